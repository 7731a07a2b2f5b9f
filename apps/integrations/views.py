import json
import logging
import math

from django.conf import settings
from django.db import DataError
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from apps.audit.services import Actor
from apps.incidents.ingest import ingest

from . import selectors
from .parsers import PARSERS, PayloadError

log = logging.getLogger(__name__)


def _error(status: int, message: str, field: str | None = None) -> JsonResponse:
    body = {"error": message}
    if field:
        body["field"] = field
    return JsonResponse(body, status=status)


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {number}")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def _decode(body: bytes):
    """Parse JSON, refusing what PostgreSQL's jsonb cannot store (NaN, ±Infinity, NUL)."""
    if b"\\u0000" in body:
        raise PayloadError("body", "must not contain NUL (\\u0000) characters")
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("body", f"is not valid JSON ({exc})") from None


@csrf_exempt
@require_POST
def ingest_alerts(request, token: str, kind: str):
    """Accept alerts from an integration.  Who may call: whoever holds the
    integration's secret token (it is in the URL, as with Alertmanager's webhook_config)."""
    integration = selectors.active_integration(token, kind)
    if integration is None:
        return _error(404, "Unknown integration token for this format.")
    if int(request.META.get("CONTENT_LENGTH") or 0) > settings.INGEST_MAX_BODY_BYTES:
        return _error(413, f"Body larger than {settings.INGEST_MAX_BODY_BYTES} bytes.", "body")
    try:
        events = PARSERS[kind](_decode(request.body))
    except PayloadError as exc:
        return _error(400, exc.message, exc.field)
    try:
        results = ingest(
            events,
            service_id=integration.service_id,
            integration_id=integration.pk,
            actor=Actor(label=f"integration:{integration.name}"),
        )
    except DataError as exc:
        # A value the parsers let through but PostgreSQL refuses; nothing was written.
        log.warning("ingest refused by the database: %s", exc)
        return _error(400, "The payload holds a value the database cannot store.", "body")
    return JsonResponse({"status": "accepted", "alerts": [r.as_dict() for r in results]}, status=202)
