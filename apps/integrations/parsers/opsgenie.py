"""Opsgenie Alert API: create (POST /v2/alerts) and close / acknowledge by alias.

Reference: https://docs.opsgenie.com/docs/alert-api and opsgenie/opsgenie-oas
definitions/alert.yaml (CreateAlertPayload, CloseAlertPayload).  The alias is
the dedup key, as in Opsgenie; priority P1..P5 maps onto our severities.
The GenieKey comes in the Authorization header; older clients also put an
`apiKey` in the body, which the stored payload leaves out (credentials.py's rule).
"""

from apps.incidents.events import AlertEvent, label_fingerprint
from apps.incidents.models import Severity

from .credentials import without_credentials
from .validation import PayloadError, choice, obj, string_map, text

PRIORITIES = {
    "P1": Severity.CRITICAL,
    "P2": Severity.HIGH,
    "P3": Severity.MEDIUM,
    "P4": Severity.LOW,
    "P5": Severity.INFO,
}


def parse_create(data) -> list[AlertEvent]:
    obj(data, "body")
    message = text(data, "message", "message", required=True, max_length=130)
    alias = text(data, "alias", "alias", max_length=512)
    # Opsgenie takes no priority as P3; here the sender then gave none, and the classifier's severity pages.
    priority = data.get("priority")
    if priority is not None:
        choice(priority, "priority", set(PRIORITIES))
    tags = data.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
        raise PayloadError("tags", "must be a list of strings")
    labels = string_map(data.get("details"), "details")
    for key in ("entity", "source"):
        if value := text(data, key, key, max_length=512):
            labels[key] = value
    fingerprint = label_fingerprint({**labels, "__message__": message})
    return [
        AlertEvent(
            title=message,
            description=text(data, "description", "description", max_length=15_000),
            status="firing",
            severity=PRIORITIES[priority or "P3"],
            severity_from=f"priority {priority}" if priority else "",
            dedup_key=(alias or fingerprint)[:255],
            fingerprint=fingerprint,
            source="opsgenie",
            labels=labels,
            payload=without_credentials(data),
        )
    ]


def parse_action(data, *, alias: str, action: str) -> list[AlertEvent]:
    """close or acknowledge; the body (user, source, note) is optional."""
    if data is not None:
        obj(data, "body")
    status = {"close": "resolved", "acknowledge": "acknowledged"}[action]
    return [
        AlertEvent(
            title=f"{action} from Opsgenie Alert API",
            status=status,
            severity=Severity.INFO,
            dedup_key=alias[:255],
            fingerprint=label_fingerprint({"alias": alias}),
            source="opsgenie",
            payload=without_credentials(data or {}),
        )
    ]
