"""The incident lifecycle: one function per verb, whoever asks.

Views, the API, Slack handlers and Celery tasks all call these.  Each one locks
the incident, checks the transition, writes the audit entry in the same
transaction and pushes the live update only once the transaction has committed.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import Actor, record
from apps.integrations import outbox
from apps.escalation import services as escalation

from . import live
from .models import Incident, Severity

NOTE_MAX_LENGTH = 10_000


class TransitionError(Exception):
    """The incident is not in a state that allows this change."""


def _locked(incident: Incident | int) -> Incident:
    pk = incident.pk if isinstance(incident, Incident) else incident
    return Incident.objects.select_for_update().get(pk=pk)


def _changed(incident: Incident) -> None:
    # robust: the change is committed; a lost live update must not turn it into an error.
    transaction.on_commit(lambda: live.publish_incident_changed(incident.pk), robust=True)
    # Slack messages of the incident follow its state (apps/integrations, queued).
    transaction.on_commit(lambda: outbox.incident_changed(incident.pk), robust=True)


def acknowledge(incident: Incident | int, *, actor: Actor) -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status != Incident.Status.TRIGGERED:
            raise TransitionError(
                f"Incident #{incident.number} is {incident.status}; only a triggered incident can be acknowledged."
            )
        incident.status = Incident.Status.ACKNOWLEDGED
        incident.acknowledged_at = timezone.now()
        incident.acknowledged_by = actor.user
        incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
        record("incident.acknowledged", actor=actor, incident=incident)
        escalation.stop(incident)
        _changed(incident)
    return incident


def unacknowledge(incident: Incident | int, *, actor: Actor, reason: str = "") -> Incident:
    """Back to triggered: nobody is on it after all (or the ack timed out); escalation restarts."""
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status != Incident.Status.ACKNOWLEDGED:
            raise TransitionError(
                f"Incident #{incident.number} is {incident.status}; only an acknowledged incident can be un-acknowledged."
            )
        incident.status = Incident.Status.TRIGGERED
        incident.acknowledged_at = None
        incident.acknowledged_by = None
        incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
        record("incident.unacknowledged", actor=actor, incident=incident, data={"reason": reason} if reason else None)
        escalation.restart(incident)
        _changed(incident)
    return incident


def escalate(incident: Incident | int, *, actor: Actor) -> Incident:
    """Page further now: a triggered incident's next level fires at the next tick; an
    acknowledged one goes back to triggered and escalates from the start."""
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.ACKNOWLEDGED:
            return unacknowledge(incident, actor=actor, reason="escalated")
        if incident.status != Incident.Status.TRIGGERED:
            raise TransitionError(f"Incident #{incident.number} is resolved; there is nobody to escalate to.")
        if escalation.escalate_now(incident) is None:
            raise TransitionError(f"Incident #{incident.number} has no escalation left to run (no policy, or all levels done).")
        record("incident.escalated", actor=actor, incident=incident)
        _changed(incident)
    return incident


def snooze(incident: Incident | int, *, minutes: int, actor: Actor) -> Incident:
    """Acknowledged for `minutes`, then triggered again and escalated from the start."""
    if not 1 <= minutes <= 24 * 60:
        raise ValueError("Snooze for 1 minute to 24 hours.")
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is resolved; there is nothing to snooze.")
        until = timezone.now() + timedelta(minutes=minutes)
        if incident.status == Incident.Status.TRIGGERED:
            incident.status = Incident.Status.ACKNOWLEDGED
            incident.acknowledged_at = timezone.now()
            incident.acknowledged_by = actor.user
            incident.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
        if escalation.snooze(incident, until=until) is None:
            raise TransitionError(f"Incident #{incident.number} has no escalation policy to wake it up again.")
        record("incident.snoozed", actor=actor, incident=incident, data={"until": until.isoformat(), "minutes": minutes})
        _changed(incident)
    return incident


def resolve(incident: Incident | int, *, actor: Actor, reason: str = "") -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is already resolved.")
        incident.status = Incident.Status.RESOLVED
        incident.resolved_at = timezone.now()
        incident.resolved_by = actor.user
        incident.save(update_fields=["status", "resolved_at", "resolved_by", "updated_at"])
        record("incident.resolved", actor=actor, incident=incident, data={"reason": reason} if reason else None)
        escalation.stop(incident)
        _changed(incident)
    return incident


def reassign(incident: Incident | int, *, assignee, actor: Actor) -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is resolved; reopen it before reassigning.")
        if not assignee.is_active:
            raise TransitionError(f"{assignee.get_username()} is not an active user.")
        previous = incident.assignee
        incident.assignee = assignee
        incident.save(update_fields=["assignee", "updated_at"])
        record(
            "incident.reassigned",
            actor=actor,
            incident=incident,
            data={
                "from": previous.get_username() if previous else None,
                "to": assignee.get_username(),
            },
        )
        _changed(incident)
    return incident


def change_severity(incident: Incident | int, *, severity: str, actor: Actor, by: str = "person") -> Incident | None:
    """Set the severity and re-plan escalation for it (escalation.services.replan).

    `by` says who decided: "person" (through the portal or the API) or "llm".  The
    LLM's opinion is advice a person can overrule: it changes nothing once a person
    has set the severity, nor an incident someone has acknowledged (None then).  An
    incident whose paging a maintenance window suppressed keeps not paging.
    """
    if severity not in Severity.values:
        raise ValueError(f"Unknown severity {severity!r}.")
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is resolved; its severity is final.")
        changes = AuditEntry.objects.filter(incident=incident, verb="incident.severity_changed")
        if by == "llm" and (incident.status != Incident.Status.TRIGGERED or changes.exclude(data__by="llm").exists()):
            return None
        if incident.severity == severity:
            return incident
        previous, incident.severity = incident.severity, severity
        incident.save(update_fields=["severity", "updated_at"])
        record(
            "incident.severity_changed",
            actor=actor,
            incident=incident,
            data={"from": previous, "to": severity, "by": by},
        )
        suppressed = AuditEntry.objects.filter(incident=incident, verb="incident.paging_suppressed").exists()
        if not suppressed:
            escalation.replan(incident)
        _changed(incident)
    return incident


def add_note(incident: Incident | int, *, text: str, actor: Actor) -> Incident:
    text = text.strip()
    if not text:
        raise ValueError("A note needs some text.")
    if len(text) > NOTE_MAX_LENGTH:
        raise ValueError(f"A note is at most {NOTE_MAX_LENGTH} characters.")
    with transaction.atomic():
        incident = _locked(incident)
        record("incident.note_added", actor=actor, incident=incident, data={"text": text})
        _changed(incident)
    return incident
