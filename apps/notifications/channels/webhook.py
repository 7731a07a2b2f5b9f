"""Outbound webhooks: the incident as JSON, signed the Standard Webhooks way
(https://www.standardwebhooks.com): headers webhook-id (the notification's
idempotency key, the same on every retry, so receivers can drop repeats),
webhook-timestamp and webhook-signature = "v1,<base64 HMAC-SHA256(secret,
id.timestamp.body)>".  The secret is "whsec_<base64 key>"."""

import base64
import hashlib
import hmac
import json
import logging
import secrets
import time

import httpx
from django.conf import settings

from .. import egress
from ..models import WebhookEndpoint
from . import PermanentError, RetryableError, http_error
from .email import incident_url

log = logging.getLogger(__name__)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(_key(secret), signed, hashlib.sha256).digest()).decode()


def verify(secret: str, headers, body: bytes, tolerance: int = 300) -> bool:
    """What a receiver does (used by our tests and offered to users as reference)."""
    timestamp = int(headers["webhook-timestamp"])
    if abs(time.time() - timestamp) > tolerance:
        return False
    expected = sign(secret, headers["webhook-id"], timestamp, body).split(",", 1)[1]
    return any(
        hmac.compare_digest(expected, sig.split(",", 1)[1])
        for sig in headers["webhook-signature"].split()
        if sig.startswith("v1,")
    )


def _endpoint(notification) -> WebhookEndpoint:
    if not notification.target.startswith("webhook:"):
        raise PermanentError(f"not a webhook target: {notification.target!r}")
    endpoint = WebhookEndpoint.objects.filter(pk=int(notification.target.removeprefix("webhook:"))).first()
    if endpoint is None or not endpoint.is_active:
        raise PermanentError("webhook endpoint deleted or disabled")
    return endpoint


def breaker_name(notification) -> str:
    return f"webhook:{notification.target.removeprefix('webhook:')}"


def fallback_target(notification) -> str | None:
    service = notification.incident.service
    endpoint = (
        WebhookEndpoint.objects.filter(is_active=True, service=service).first()
        or WebhookEndpoint.objects.filter(is_active=True, service__isnull=True, team_id=service.team_id).first()
    )
    return f"webhook:{endpoint.pk}" if endpoint else None


def payload(notification) -> dict:
    incident = notification.incident
    return {
        "type": "incident.notification",
        "timestamp": notification.created_at.isoformat(),
        "data": {
            "incident": {
                "id": incident.pk,
                "number": incident.number,
                "title": incident.title,
                "status": incident.status,
                "severity": incident.severity,
                "service": incident.service.slug,
                "alert_count": incident.alert_count,
                "created_at": incident.created_at.isoformat(),
                "url": incident_url(incident),
            },
            "reason": notification.reason,
        },
    }


def send(notification) -> str:
    endpoint = _endpoint(notification)
    body = json.dumps(payload(notification), separators=(",", ":")).encode()
    timestamp = int(time.time())
    msg_id = notification.idempotency_key
    headers = {
        "content-type": "application/json",
        "user-agent": "incident-manager-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(endpoint.secret, msg_id, timestamp, body),
    }
    try:
        # Checked now, and sent to the very address checked (egress.py: DNS rebinding).
        url, host, extensions = egress.pinned(endpoint.url)
    except egress.Unresolved as exc:
        raise RetryableError(f"webhook URL: {exc.kind}") from None
    except egress.Refused as exc:
        raise PermanentError(f"webhook URL refused: {exc.kind}") from None
    try:
        # trust_env=False: no proxy from the environment, which would connect by name instead.
        with httpx.Client(timeout=settings.NOTIFY_TIMEOUT, trust_env=False) as client:
            response = client.post(url, content=body, headers={**headers, **host}, extensions=extensions)
    except httpx.TransportError as exc:  # connect errors and timeouts
        raise RetryableError(f"{type(exc).__name__}: {exc}") from None
    if response.status_code >= 300:
        # The receiver's body is its own: an internal service could answer with what it
        # holds, and the error is shown on the incident's timeline.  Only the status.
        log.debug("webhook %s answered %s: %.200r", endpoint.pk, response.status_code, response.text)
        raise http_error(response.status_code, httpx.codes.get_reason_phrase(response.status_code),
                         response.headers.get("retry-after"))
    return response.headers.get("x-request-id", "") or f"HTTP {response.status_code}"
