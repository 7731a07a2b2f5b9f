"""While PostgreSQL is away: a 503 with Retry-After and a JSON body, never Django's HTML 500.

Senders decide by the status whether to try again: Alertmanager retries a 5xx and
drops a 4xx for good, PagerDuty's clients retry 429 and 5xx.  A 503 with
Retry-After has all of them come back, so no alert is lost while the database
restarts.  The same for a sealed secret that ENCRYPTION_KEYS cannot open: the
deployment's fault, not the sender's, and fixed by an operator, not by the sender.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from apps.accounts.sealed import SealedSecretError
from apps.integrations.urls import SENDER_PATH_PREFIXES

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
JSON_PATHS = (*SENDER_PATH_PREFIXES, "/api/")


class ServiceUnavailableMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            why = "the database is unavailable"
        elif isinstance(exception, SealedSecretError):
            why = "a secret this endpoint needs cannot be opened (ENCRYPTION_KEYS)"
        else:
            return None
        if not request.path.startswith(JSON_PATHS):
            return None  # the portal's pages keep Django's error page
        # The view's name, not the path: ingestion paths hold their secret token.
        log.error("%s: 503, %s: %s", getattr(request.resolver_match, "view_name", "?"), why, exception)
        return unavailable(why)


def unavailable(why: str, retry_after: int = RETRY_AFTER_SECONDS) -> JsonResponse:
    """The 503 senders come back after (ratelimit.py answers them in this shape too)."""
    return JsonResponse(
        {"error": f"Service unavailable: {why}. Retry later."}, status=503, headers={"Retry-After": str(retry_after)}
    )
