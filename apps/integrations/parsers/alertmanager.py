"""Prometheus Alertmanager webhook, payload version 4.

Reference: prometheus/alertmanager notify/webhook/webhook.go (Message) and
template/template.go (Data, Alert).  Each alert in the group becomes one event;
its dedup key is Alertmanager's own fingerprint (a hash of the alert's labels),
so repeats of an alert, and its resolution, find the same incident.  The group's
groupKey is kept on the alert for grouping rules.  Grafana's webhook embeds the
same message shape (parsers/grafana.py), hence `parse_group`.  Each alert is
stored as sent, but for a credential at its top level (credentials.py's rule).
"""

from apps.incidents.events import AlertEvent, label_fingerprint, normalise_severity, severity_of_labels
from apps.incidents.models import Severity

from .credentials import without_credentials
from .validation import PayloadError, choice, obj, plausible_timestamp, string_map, text, timestamp

MAX_ALERTS = 1000


def parse(data) -> list[AlertEvent]:
    obj(data, "body")
    version = data.get("version")
    if version is not None and version != "4":
        raise PayloadError("version", 'must be "4" (Alertmanager webhook payload version 4)')
    return parse_group(data, source="alertmanager")


def parse_group(data: dict, *, source: str, fallback_title: str = "") -> list[AlertEvent]:
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts", "is required and must be a list")
    if not alerts:
        raise PayloadError("alerts", "must not be empty")
    if len(alerts) > MAX_ALERTS:
        raise PayloadError("alerts", f"must have at most {MAX_ALERTS} alerts")
    group_key = text(data, "groupKey", "groupKey", max_length=500)
    common = string_map(data.get("commonLabels"), "commonLabels")
    receiver = text(data, "receiver", "receiver")
    truncated = data.get("truncatedAlerts", 0)
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError("truncatedAlerts", "must be a whole number of 0 or more")
    # Alertmanager's max_alerts cut the group: say so where responders look.
    left_out = f"Alertmanager left {truncated} more alert{'s' if truncated != 1 else ''} of this group out of its notification (max_alerts)." if truncated else ""
    events = []
    for i, alert in enumerate(alerts):
        where = f"alerts[{i}]"
        obj(alert, where)
        labels = string_map(alert.get("labels"), f"{where}.labels")
        if not labels:
            raise PayloadError(f"{where}.labels", "is required and must not be empty")
        annotations = string_map(alert.get("annotations"), f"{where}.annotations")
        status = choice(alert.get("status"), f"{where}.status", {"firing", "resolved"})
        fingerprint = text(alert, "fingerprint", f"{where}.fingerprint", max_length=64)
        notes = []  # what responders should know of this alert's payload
        starts_at = plausible_timestamp(alert.get("startsAt"), f"{where}.startsAt", notes)
        timestamp(alert.get("endsAt"), f"{where}.endsAt")  # checked, not kept
        ours = label_fingerprint(labels)
        severity, severity_from = severity_of_labels(labels)
        if severity is None and (severity := normalise_severity(common.get("severity"))):
            severity_from = f"commonLabels severity '{common['severity']}'"
        title = (
            annotations.get("summary")
            or annotations.get("title")
            or labels.get("alertname")
            or fallback_title
            or f"Alert from {receiver or source}"
        )
        events.append(
            AlertEvent(
                title=title[:500],
                description="\n\n".join(
                    filter(None, [annotations.get("description") or annotations.get("message", ""), left_out, *notes])
                ),
                status=status,
                severity=severity or Severity.MEDIUM,
                severity_from=severity_from,
                dedup_key=fingerprint or ours,
                fingerprint=ours,
                source=source,
                labels=labels,
                group_key=group_key,
                starts_at=starts_at,
                payload=without_credentials(alert),
            )
        )
    return events
