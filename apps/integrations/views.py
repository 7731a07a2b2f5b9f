import logging

from django.conf import settings
from django.db import DataError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods, require_POST

from . import heartbeats, selectors
from .inbound import accept, decode_json, signature_problem
from .parsers import PARSERS, PayloadError, parse

log = logging.getLogger(__name__)


def _error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


@csrf_exempt
@require_POST
def ingest_alerts(request, token: str, kind: str):
    """Accept alerts from an integration.  Who may call: whoever holds the
    integration's secret token (it is in the URL, as with Alertmanager's webhook_config)."""
    return _ingest(request, selectors.active_integration(token, kind, request))


@csrf_exempt
@require_POST
def ingest_alerts_bearer(request, kind: str):
    """The same, with the token in `Authorization: Bearer <token>` rather than in the
    URL (Alertmanager's http_config.authorization, Grafana's webhook credentials), so
    that proxies' access logs never see it."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    integration = selectors.active_integration(token.strip(), kind, request) if scheme.lower() == "bearer" else None
    return _ingest(request, integration)


def _ingest(request, integration):
    # PagerDuty, Opsgenie and heartbeat integrations have endpoints of their own.
    if integration is None or integration.kind not in PARSERS:
        return _error(404, "Unknown integration token for this format.")
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.INGEST_MAX_BODY_BYTES:
        return _error(413, f"Body larger than {settings.INGEST_MAX_BODY_BYTES} bytes.", "body")
    if problem := signature_problem(integration, request.headers, request.body):
        return _error(401, f"Bad signature: {problem}.", integration.signature_header)
    try:
        events = parse(integration, decode_json(request.body))
    except PayloadError as exc:
        return _error(400, exc.message, exc.field)
    try:
        results = accept(integration, events)
    except DataError as exc:
        # A value the parsers let through but PostgreSQL refuses; nothing was written.
        log.warning("ingest refused by the database: %s", exc)
        return _error(400, "The payload holds a value the database cannot store.", "body")
    return JsonResponse({"status": "accepted", "alerts": [r.as_dict() for r in results]}, status=202)


@csrf_exempt
@require_http_methods(["GET", "HEAD", "POST"])
def heartbeat_ping(request, token: str):
    """A heartbeat's ping (GET or POST, so that `curl URL` from cron will do).  Who may
    call: whoever holds the heartbeat integration's secret token."""
    integration = selectors.active_integration(token, "heartbeat", request)
    if integration is None:
        return _error(404, "Unknown heartbeat token.")
    resolved = heartbeats.record_ping(integration)
    return JsonResponse({"status": "ok", "resolved_missed_heartbeat": resolved})

