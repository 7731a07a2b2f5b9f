"""Endpoints that speak other vendors' alert APIs, so their senders switch by URL.

- PagerDuty Events API v2: POST /v2/enqueue, the routing_key in the body names the
  integration; answers and errors in PagerDuty's own shapes.
- Opsgenie Alert API: POST /opsgenie/v2/alerts (create) and
  /opsgenie/v2/alerts/<alias>/close|acknowledge?identifierType=alias, with
  `Authorization: GenieKey <key>`; asynchronous 202 answers as Opsgenie gives.

Who may call: holders of the integration's routing key / API key.
"""

import logging
import re
import time
import uuid

from django.conf import settings
from django.db import DataError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import selectors
from .inbound import accept, decode_json
from .models import Integration
from .parsers import PayloadError, opsgenie, pagerduty

log = logging.getLogger(__name__)

PAGERDUTY_MAX_BODY_BYTES = 512 * 1024  # PagerDuty's own limit
_ROUTING_KEY = re.compile(r"[A-Za-z0-9]{32}")


def _pagerduty_invalid(*errors: str, status: int = 400) -> JsonResponse:
    return JsonResponse(
        {"status": "invalid event", "message": "Event object is invalid", "errors": list(errors)}, status=status
    )


@csrf_exempt
@require_POST
def pagerduty_enqueue(request):
    if int(request.META.get("CONTENT_LENGTH") or 0) > min(settings.INGEST_MAX_BODY_BYTES, PAGERDUTY_MAX_BODY_BYTES):
        return _pagerduty_invalid("Event object is too large (maximum 512 KB)", status=413)
    try:
        data = decode_json(request.body)
    except PayloadError as exc:
        return _pagerduty_invalid(f"'{exc.field}' {exc.message}")
    routing_key = data.get("routing_key") if isinstance(data, dict) else None
    if not isinstance(routing_key, str) or not routing_key:
        return _pagerduty_invalid("'routing_key' is missing or blank")
    if not _ROUTING_KEY.fullmatch(routing_key):
        return _pagerduty_invalid("Length of 'routing_key' is incorrect (should be 32 characters), or it holds non-alphanumeric characters")
    integration = selectors.active_integration(routing_key, Integration.Kind.PAGERDUTY, request)
    if integration is None:
        return _pagerduty_invalid("Invalid routing key")
    try:
        events = pagerduty.parse(data)
        accept(integration, events)
    except PayloadError as exc:
        return _pagerduty_invalid(f"'{exc.field}' {exc.message}")
    except DataError as exc:
        log.warning("PagerDuty event refused by the database: %s", exc)
        return _pagerduty_invalid("Event holds a value that cannot be stored")
    return JsonResponse(
        {"status": "success", "message": "Event processed", "dedup_key": events[0].dedup_key}, status=202
    )


def _opsgenie_answer(status: int, started: float, **body) -> JsonResponse:
    return JsonResponse(
        {**body, "took": round(time.monotonic() - started, 3), "requestId": str(uuid.uuid4())}, status=status
    )


def _opsgenie_integration(request) -> Integration | None:
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    if scheme != "GenieKey" or not key:
        return None
    return selectors.active_integration(key.strip(), Integration.Kind.OPSGENIE, request)


def _opsgenie(request, parse):
    started = time.monotonic()
    integration = _opsgenie_integration(request)
    if integration is None:
        return _opsgenie_answer(401, started, message="Could not authenticate: missing or unknown GenieKey.")
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.INGEST_MAX_BODY_BYTES:
        return _opsgenie_answer(413, started, message="Request body is too large.")
    try:
        data = decode_json(request.body) if request.body.strip() else None
        accept(integration, parse(data))
    except PayloadError as exc:
        return _opsgenie_answer(422, started, message=f"{exc.field} {exc.message}", errors={exc.field: exc.message})
    except DataError as exc:
        log.warning("Opsgenie request refused by the database: %s", exc)
        return _opsgenie_answer(422, started, message="The request holds a value that cannot be stored.")
    return _opsgenie_answer(202, started, result="Request will be processed")


@csrf_exempt
@require_POST
def opsgenie_create(request):
    return _opsgenie(request, opsgenie.parse_create)


@csrf_exempt
@require_POST
def opsgenie_action(request, identifier: str, action: str):
    started = time.monotonic()
    if request.GET.get("identifierType") != "alias":
        # We key alerts by alias; Opsgenie's own ids and tiny ids are never handed out.
        return _opsgenie_answer(422, started, message="identifierType must be alias", errors={"identifierType": "must be alias"})
    return _opsgenie(request, lambda data: opsgenie.parse_action(data, alias=identifier, action=action))
