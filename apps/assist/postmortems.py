"""Postmortems of resolved critical and high incidents: drafted, edited, exported.

A draft is written at once from the incident's audit timeline and alerts by a
plain template (marked as such: no LLM involved).  When the LLM is configured and
within budget, a worker then asks it for a better draft, which replaces the
template's only while nobody has edited the postmortem.  Every change is audited.
"""

import json
from datetime import UTC

from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor, record
from apps.incidents import llm, triage
from apps.incidents.models import Incident, Severity
from apps.incidents.redaction import redact
from apps.incidents.selectors import timeline as audit_timeline

from .models import Postmortem
from .summaries import alert_lines

ELIGIBLE_SEVERITIES = (Severity.CRITICAL, Severity.HIGH)
SECTION_MAX_LENGTH = 20_000
LLM = Actor("llm")
TITLES = {
    "summary": "Summary",
    "timeline": "Timeline",
    "impact": "Impact",
    "contributing_factors": "Contributing factors",
    "action_items": "Action items",
}
TOOL = "record_postmortem"
SCHEMA = {
    "type": "object",
    "properties": {name: {"type": "string", "minLength": 1, "maxLength": 6000} for name in Postmortem.SECTIONS},
    "required": Postmortem.SECTIONS,
    "additionalProperties": False,
}
PROMPT = """Draft a blameless postmortem in Markdown for this resolved incident of an LLM-powered
service, from its audit timeline and alerts only: invent nothing, write "unknown" where the
record is silent. Sections: summary (3 sentences), timeline (a bullet per event, UTC times),
impact, contributing_factors, action_items (checkbox bullets). Call {tool}.

{facts}

Timeline:
{timeline}

Alerts (newest first):
{alerts}"""


class NotEligible(Exception):
    """Only resolved critical and high incidents get a postmortem."""


def eligible(incident: Incident) -> bool:
    return incident.status == Incident.Status.RESOLVED and incident.severity in ELIGIBLE_SEVERITIES


def draft(incident: Incident, *, actor: Actor) -> Postmortem:
    """The incident's postmortem, drafted from the template if it has none yet (the
    caller queues tasks.improve_postmortem for the LLM's draft)."""
    if not eligible(incident):
        raise NotEligible(f"Incident #{incident.number} is not a resolved critical or high incident.")
    with transaction.atomic():
        postmortem, created = Postmortem.objects.get_or_create(
            incident=incident, defaults={**template_sections(incident), "drafted_by": Postmortem.Author.TEMPLATE}
        )
        if created:
            record("postmortem.drafted", actor=actor, incident=incident, data={"by": Postmortem.Author.TEMPLATE})
    return postmortem


def update(postmortem: Postmortem, *, changes: dict[str, str], actor: Actor) -> Postmortem:
    """Set sections and/or status (already validated by the form); audited with the
    names of the fields that changed."""
    with transaction.atomic():
        postmortem = Postmortem.objects.select_for_update().get(pk=postmortem.pk)
        changed = [name for name, value in changes.items() if getattr(postmortem, name) != value]
        if not changed:
            return postmortem
        for name in changed:
            setattr(postmortem, name, changes[name])
        postmortem.updated_by = actor.user
        postmortem.save()
        record(
            "postmortem.updated",
            actor=actor,
            incident=postmortem.incident,
            data={"fields": changed, "status": postmortem.status},
        )
    return postmortem


def improve_with_llm(incident_id: int) -> str:
    """Replace an untouched template draft by the LLM's; return what happened."""
    status = triage.llm_status()
    if status != "active":
        return status
    postmortem = Postmortem.objects.select_related("incident__service").filter(incident_id=incident_id).first()
    if postmortem is None or postmortem.drafted_by != Postmortem.Author.TEMPLATE or postmortem.updated_by_id:
        return "nothing to do"
    incident = postmortem.incident
    prompt = PROMPT.format(
        tool=TOOL,
        facts=redact(_facts(incident)),
        timeline=redact(template_sections(incident)["timeline"])[:8000],
        alerts=alert_lines(incident.alerts.order_by("-received_at", "-pk")[:20]),
    )
    try:
        answer, usage = llm.ask(prompt, tool=TOOL, description="Record the postmortem draft.", schema=SCHEMA, max_tokens=2000)
    except llm.LLMUnavailable as exc:
        return triage.fell_back(incident_id, exc, "Postmortem draft (the template draft stays)")
    with transaction.atomic():
        triage.charge(incident_id, usage)
        # Only if still untouched: a responder may have started editing meanwhile.
        replaced = Postmortem.objects.filter(
            pk=postmortem.pk, drafted_by=Postmortem.Author.TEMPLATE, updated_by__isnull=True, updated_at=postmortem.updated_at
        ).update(**{name: answer[name] for name in Postmortem.SECTIONS}, drafted_by=Postmortem.Author.LLM, updated_at=timezone.now())
        if not replaced:
            return "edited meanwhile"
        record("postmortem.drafted", actor=LLM, incident=incident, data={"by": Postmortem.Author.LLM, "cost_usd": str(usage.cost)})
    return "drafted"


def _facts(incident: Incident) -> str:
    duration = incident.resolved_at - incident.created_at if incident.resolved_at else None
    return (
        f"Incident #{incident.number}: {incident.title}\n"
        f"Service {incident.service.name}; severity {incident.severity}; category {incident.category or 'unknown'}"
        f"{f'; model {incident.llm_model}' if incident.llm_model else ''}"
        f"{f'; environment {incident.environment}' if incident.environment else ''}.\n"
        f"Opened {_at(incident.created_at)}, resolved {_at(incident.resolved_at)}"
        f"{f' after {duration_text(duration)}' if duration else ''}; {incident.alert_count} alerts.\n"
        f"Labels: {json.dumps(incident.labels, sort_keys=True)}"
    )


def template_sections(incident: Incident) -> dict[str, str]:
    """The deterministic draft: facts from the record, and prompts where only people know."""
    entries = list(audit_timeline(incident))
    reason = next((e.data.get("reason") for e in reversed(entries) if e.verb == "incident.resolved"), "")
    first_ack = next((e for e in entries if e.verb == "incident.acknowledged"), None)
    events = [(e.at, f"{e.actor_label}: {_describe(e)}") for e in entries]
    alerts = incident.alerts.order_by("received_at", "pk")
    if first := alerts.first():
        events.append((first.received_at, f"first alert ({first.source}, {first.severity}): {first.title}"))
    if incident.alert_count > 1 and (last := alerts.last()):
        events.append((last.received_at, f"last alert, {incident.alert_count} in all ({last.status}): {last.title}"))
    lines = [f"- {_at(at)} {text}" for at, text in sorted(events, key=lambda event: event[0])]
    return {
        "summary": (
            f"{incident.title} ({incident.severity}, {incident.service.name}) opened {_at(incident.created_at)} "
            f"and was resolved {_at(incident.resolved_at)}"
            f"{f' after {duration_text(incident.resolved_at - incident.created_at)}' if incident.resolved_at else ''}"
            f"{f': {reason}' if reason else ''}. {incident.alert_count} alert{'' if incident.alert_count == 1 else 's'}."
        ),
        "timeline": "\n".join(lines) or "- (no recorded events)",
        "impact": (
            f"- Severity {incident.severity}; category {incident.category or 'unknown'}"
            f"{f'; model {incident.llm_model}' if incident.llm_model else ''}"
            f"{f'; environment {incident.environment}' if incident.environment else ''}.\n"
            f"- Time to acknowledge: {duration_text(first_ack.at - incident.created_at) if first_ack else 'never acknowledged'}.\n"
            "- Who was affected and how: to be written."
        ),
        "contributing_factors": (
            f"- Classification: {incident.classification_rationale or 'none'}.\n- To be written: what made this possible."
        ),
        "action_items": "- [ ] To be written: what we change so that it does not happen again, with an owner each.",
    }


def to_markdown(postmortem: Postmortem) -> str:
    incident = postmortem.incident
    origin = (
        "Drafted by the LLM from the timeline and alerts; reviewed by people"
        if postmortem.drafted_by == Postmortem.Author.LLM
        else "Template draft generated from the incident timeline (no LLM)"
    )
    parts = [
        f"# Postmortem: #{incident.number} {incident.title}",
        "",
        f"Status: {postmortem.status}. {origin}"
        f"{'' if postmortem.updated_by_id else ' (not yet edited by anyone)'}. "
        f"Last updated {_at(postmortem.updated_at)}{f' by {postmortem.updated_by}' if postmortem.updated_by else ''}.",
    ]
    for name in Postmortem.SECTIONS:
        parts += ["", f"## {TITLES[name]}", "", getattr(postmortem, name).strip() or "_Empty._"]
    return "\n".join(parts) + "\n"


def _describe(entry) -> str:
    data = entry.data or {}
    verb = entry.verb.split(".", 1)[-1].replace("_", " ")
    if entry.verb == "incident.note_added":
        return f"note: {data.get('text', '')}"
    if entry.verb == "incident.severity_changed":
        return f"severity {data.get('from')} -> {data.get('to')} (by {data.get('by')})"
    if entry.verb == "escalation.notified":
        names = ", ".join(t.get("username", "?") for t in data.get("targets", []))
        return f"paged level {data.get('level', 0) + 1} ({', '.join(data.get('channels', []))}) to {names or 'nobody'}"
    if data.get("reason"):
        return f"{verb}: {data['reason']}"
    return verb


def _at(moment) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "unknown"


def duration_text(delta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
