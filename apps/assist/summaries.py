"""The LLM's short summary of an incident, for the responder who opens it.

Written by a worker (tasks.summarise), never in a request: when the incident has
alerts the summary has not seen, at most once per SUMMARY_EVERY per incident (the
sweep in tasks.py finds those).  Same client, redaction, cost accounting and monthly
budget as the classification (apps/incidents/llm.py, triage.py): the cost is
added to the incident's LLM cost, which the budget sums.
"""

import json
from datetime import timedelta

from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from apps.incidents import live, llm, triage
from apps.incidents.models import Incident
from apps.incidents.redaction import redact, redact_labels

from .models import IncidentSummary

SUMMARY_EVERY = timedelta(minutes=5)
ALERTS_IN_PROMPT = 10
TOOL = "record_summary"
SCHEMA = {
    "type": "object",
    "properties": {"summary": {"type": "string", "minLength": 1, "maxLength": 1500}},
    "required": ["summary"],
    "additionalProperties": False,
}
PROMPT = """You help an on-call engineer who just opened this incident of an LLM-powered service.
In at most 4 short sentences, say what is happening, since when, how it is evolving across the
alerts, and what to look at first. No preamble. Call {tool}.

Incident #{number}: {title}
Severity {severity}, status {status}, service {service}, category {category}; {alert_count} alerts
from {first} to {last}.
Description: {description}
Labels: {labels}
Latest alerts (newest first):
{alerts}"""



def alert_lines(alerts) -> str:
    """Alerts as prompt lines, titles redacted (summaries and postmortem drafts)."""
    return "\n".join(
        f"- {a.received_at.isoformat(timespec='seconds')} {a.status} {a.severity}: {redact(a.title)[:300]}" for a in alerts
    )

def due(limit: int = 50) -> list[int]:
    """Open incidents with alerts their summary has not seen, not summarised lately."""
    stale = timezone.now() - SUMMARY_EVERY
    return list(
        Incident.objects.exclude(status=Incident.Status.RESOLVED)
        .filter(Q(summary__isnull=True) | Q(summary__alert_count__lt=F("alert_count"), summary__generated_at__lt=stale))
        .order_by("-last_alert_at")
        .values_list("pk", flat=True)[:limit]
    )


def summarise(incident_id: int) -> str:
    """Write or refresh the summary if due; return what happened (for logs and tests)."""
    status = triage.llm_status()
    if status != "active":
        return status
    # One writer per incident at a time: two workers would pay twice for the same text.
    if not cache.add(f"assist-summary:{incident_id}", 1, timeout=120):
        return "busy"
    try:
        return _summarise(incident_id)
    finally:
        cache.delete(f"assist-summary:{incident_id}")


def _summarise(incident_id: int) -> str:
    incident = Incident.objects.select_related("service").defer("embedding").filter(pk=incident_id).first()
    if incident is None:
        return "nothing to do"
    current = IncidentSummary.objects.filter(incident_id=incident_id).first()
    if current and current.alert_count >= incident.alert_count:
        return "up to date"
    if current and current.generated_at > timezone.now() - SUMMARY_EVERY:
        return "throttled"
    alerts = incident.alerts.order_by("-received_at", "-pk")[:ALERTS_IN_PROMPT]
    prompt = PROMPT.format(
        tool=TOOL,
        number=incident.number,
        title=redact(incident.title),
        severity=incident.severity,
        status=incident.status,
        service=incident.service.name,
        category=incident.category or "unknown",
        alert_count=incident.alert_count,
        first=incident.first_alert_at.isoformat(timespec="seconds"),
        last=incident.last_alert_at.isoformat(timespec="seconds"),
        description=redact(incident.description)[:2000],
        labels=json.dumps(redact_labels(incident.labels), sort_keys=True)[:1000],
        alerts=alert_lines(alerts),
    )
    try:
        answer, usage = llm.ask(prompt, tool=TOOL, description="Record the incident summary.", schema=SCHEMA, max_tokens=500)
    except llm.LLMUnavailable as exc:
        return triage.fell_back(incident_id, exc, "Summary")
    with transaction.atomic():
        IncidentSummary.objects.update_or_create(
            incident_id=incident_id,
            defaults={"text": answer["summary"], "alert_count": incident.alert_count, "generated_at": timezone.now()},
        )
        triage.charge(incident_id, usage)
        transaction.on_commit(lambda: live.publish_incident_changed(incident_id), robust=True)
    return "summarised"
