"""PagerDuty Events API v2 (POST /v2/enqueue), wire-compatible.

Reference: PagerDuty developer docs "Events API v2" (trigger, acknowledge,
resolve) and PagerDuty/api-schema reference/events-v2/openapiv3.json.  The
routing_key names the integration and is checked by the view; this parser reads
the event, and the stored payload keeps no routing_key (credentials.py's rule).  A trigger without dedup_key gets one generated, as PagerDuty does.
"""

import uuid

from apps.incidents.events import AlertEvent, label_fingerprint
from apps.incidents.models import Severity

from .credentials import without_credentials
from .validation import PayloadError, obj, plausible_timestamp, string_map, text

SEVERITIES = {
    "critical": Severity.CRITICAL,
    "error": Severity.HIGH,
    "warning": Severity.MEDIUM,
    "info": Severity.INFO,
}
ACTIONS = {"trigger": "firing", "acknowledge": "acknowledged", "resolve": "resolved"}


def parse(data) -> list[AlertEvent]:
    obj(data, "body")
    action = data.get("event_action")
    if not isinstance(action, str) or not action:
        raise PayloadError("event_action", "is missing or blank")
    if action not in ACTIONS:
        raise PayloadError("event_action", "is invalid (must be one of: trigger, acknowledge, resolve)")
    dedup_key = text(data, "dedup_key", "dedup_key", max_length=255)
    if action != "trigger":
        if not dedup_key:
            raise PayloadError("dedup_key", "is missing or blank")
        return [
            AlertEvent(
                title=f"{action} from PagerDuty Events API",
                status=ACTIONS[action],
                severity=Severity.INFO,
                dedup_key=dedup_key,
                fingerprint=label_fingerprint({"dedup_key": dedup_key}),
                source="pagerduty",
                payload=without_credentials(data),
            )
        ]
    payload = data.get("payload")
    if not isinstance(payload, dict):
        raise PayloadError("payload", "is missing or not an object")
    summary = _required(payload, "summary", max_length=1024)
    source = _required(payload, "source", max_length=255)
    severity = payload.get("severity")
    if not isinstance(severity, str) or not severity:
        raise PayloadError("payload.severity", "is missing or blank")
    if severity not in SEVERITIES:
        raise PayloadError("payload.severity", "is invalid (must be one of: critical, error, warning, info)")
    details = payload.get("custom_details")
    if details is not None and not isinstance(details, dict):
        raise PayloadError("payload.custom_details", "must be an object")
    # Scalar custom details become labels (nested ones stay in the payload), then the
    # event's own routing fields, which win.
    labels = string_map(
        {k: v for k, v in (details or {}).items() if isinstance(v, (str, int, float, bool))}, "payload.custom_details"
    )
    labels["source"] = source
    for key in ("component", "group", "class"):
        if value := text(payload, key, f"payload.{key}", max_length=255):
            labels[key] = value
    notes = []  # what responders should know of this event
    starts_at = plausible_timestamp(_rfc3339(payload.get("timestamp")), "payload.timestamp", notes)
    return [
        AlertEvent(
            title=summary[:500],
            description="\n\n".join(notes),
            status="firing",
            severity=SEVERITIES[severity],
            severity_from=f"payload.severity '{severity}'",
            dedup_key=dedup_key or uuid.uuid4().hex,
            fingerprint=label_fingerprint({**labels, "__summary__": summary}),
            source="pagerduty",
            labels=labels,
            starts_at=starts_at,
            payload=without_credentials(data),
        )
    ]


def _required(payload: dict, key: str, *, max_length: int) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(f"payload.{key}", "is missing or blank")
    if len(value) > max_length:
        raise PayloadError(f"payload.{key}", f"must be at most {max_length} characters")
    return value


def _rfc3339(value):
    """PagerDuty's examples write offsets as +0000; ISO 8601 parsers want +00:00."""
    if isinstance(value, str) and len(value) > 5 and value[-5] in "+-" and value[-4:].isdigit():
        return f"{value[:-2]}:{value[-2:]}"
    return value
