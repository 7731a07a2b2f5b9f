"""Generic JSON, for senders with no format of their own (documented in the README).

    {"title": "Disk almost full", "severity": "high", "dedup_key": "db-01/disk",
     "description": "...", "source": "cron", "labels": {"host": "db-01"},
     "status": "firing"}

Only title is required.  Without severity, a `severity` or `priority` label gives
it; without either, the classifier's severity pages.  Without dedup_key the key is a hash of the title and
labels.  A JSON list of such objects sends several alerts in one request.  An
integration with field-mapping templates (templating.py) first maps the
sender's own JSON onto these fields.  The stored payload is the sender's JSON
without credentials at its top level (`api_key`, `token`, `routing_key`, ...:
credentials.py's rule); templates still see all of it.
"""

from apps.incidents.events import AlertEvent, SEVERITY_ALIASES, label_fingerprint, normalise_severity, severity_of_labels
from apps.incidents.models import Severity

from .. import templating
from .credentials import without_credentials
from .validation import PayloadError, choice, obj, plausible_timestamp, string_map, text

MAX_ALERTS = 1000


def parse(data, templates: dict[str, str] | None = None) -> list[AlertEvent]:
    renderer = templating.Renderer(templates) if templates else None
    if isinstance(data, list):
        if not data:
            raise PayloadError("body", "must not be an empty list")
        if len(data) > MAX_ALERTS:
            raise PayloadError("body", f"must have at most {MAX_ALERTS} alerts")
        return [_parse_one(item, f"[{i}].", renderer) for i, item in enumerate(data)]
    return [_parse_one(data, "", renderer)]


def _parse_one(raw, prefix: str, renderer) -> AlertEvent:
    obj(raw, prefix.rstrip(".") or "body")
    data = {**raw, **renderer.render(raw)} if renderer else raw
    title = text(data, "title", f"{prefix}title", required=True, max_length=500)
    labels = string_map(data.get("labels"), f"{prefix}labels")
    severity_word = data.get("severity")
    if severity_word is None:
        # As the classifier reads them; none there either: the classifier's severity pages.
        severity, severity_from = severity_of_labels(labels)
    else:
        severity = normalise_severity(severity_word) if isinstance(severity_word, str) else None
        if severity is None:
            raise PayloadError(f"{prefix}severity", f"must be one of {', '.join(sorted(SEVERITY_ALIASES))}")
        severity_from = f"severity '{severity_word}'"
    dedup_key = text(data, "dedup_key", f"{prefix}dedup_key", max_length=255)
    status = choice(data.get("status", "firing"), f"{prefix}status", {"firing", "resolved"})
    fingerprint = label_fingerprint({**labels, "__title__": title})
    notes = []  # what responders should know of this payload
    starts_at = plausible_timestamp(data.get("timestamp"), f"{prefix}timestamp", notes)
    description = text(data, "description", f"{prefix}description", max_length=20_000)
    return AlertEvent(
        title=title,
        description="\n\n".join(filter(None, [description, *notes])),
        status=status,
        severity=severity or Severity.MEDIUM,
        severity_from=severity_from,
        dedup_key=dedup_key or fingerprint,
        fingerprint=fingerprint,
        source=text(data, "source", f"{prefix}source", max_length=100) or "generic",
        labels=labels,
        starts_at=starts_at,
        payload=without_credentials(raw),
    )
