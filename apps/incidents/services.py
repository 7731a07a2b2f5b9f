"""The incident lifecycle: one function per verb, whoever asks.

Views, the API, Slack handlers and Celery tasks all call these.  Each one locks
the incident, checks the transition, writes the audit entry in the same
transaction and pushes the live update only once the transaction has committed.
"""

from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from apps.accounts import roles
from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, Actor, entry, record, record_all
from incident_manager import redis_outage

from . import dedup, lifecycle, live, maintenance
from .classification import classify
from .models import Alert, DedupReason, Incident, IncidentKey, Service, Severity

NOTE_MAX_LENGTH = 10_000


class TransitionError(Exception):
    """The incident is not in a state that allows this change."""


def _locked(incident: Incident | int) -> Incident:
    pk = incident.pk if isinstance(incident, Incident) else incident
    return Incident.objects.select_for_update().get(pk=pk)


def changed(incident: Incident) -> None:
    """After commit the portal shows the change; whatever else shows the incident
    (its chat messages) hears of it through lifecycle.changed."""
    # The change is committed; a lost live update must not turn it into an error.
    transaction.on_commit(lambda: redis_outage.attempt("live update", live.publish_incident_changed, incident.pk), robust=True)
    lifecycle.changed.send(sender=Incident, incident_id=incident.pk)


def new_incident(*, title: str, description: str = "", severity: str | None, severity_from: str = "", service_id: int,
                 dedup_key: str, fingerprint: str, labels: dict, source: str, alert_count: int, first_alert_at,
                 last_alert_at, settling: bool = False) -> Incident:
    """An incident not yet saved, classified by the rules (microseconds, no I/O).  Ingest
    inserts a request's new incidents in one statement; then opened() for all of them.

    `severity` is the sender's (`severity_from` says where it gave it); None when it
    gave none: the classifier's severity then pages, from the first page on."""
    verdict = classify(title, description, labels, source=source)
    return Incident(
        title=title, description=description, service_id=service_id, dedup_key=dedup_key,
        severity=severity or verdict.severity,
        severity_source=Incident.SeveritySource.SENDER if severity else Incident.SeveritySource.RULES,
        fingerprint=fingerprint, labels=labels, alert_count=alert_count,
        first_alert_at=first_alert_at, last_alert_at=last_alert_at,
        **verdict.incident_fields(),
        # Compared with open incidents by the worker before it may page (settle.py).
        settling=settling,
    )


def severity_reason(incident: Incident, severity_from: str = "") -> str:
    """Why a new incident has its severity, for its audit entry."""
    if incident.severity_source == Incident.SeveritySource.RULES:
        return f"severity {incident.severity} from the rules: {incident.classification_rationale}"
    return f"severity {incident.severity} from the sender" + (f" ({severity_from})" if severity_from else "")


def opened(incidents: list[Incident], *, triggered: dict[int, dict], actor: Actor, windows=(), at) -> None:
    """Incidents just inserted: their audit entries ("incident.triggered" with
    `triggered[pk]`, and "incident.paging_suppressed" for those a maintenance window of
    `windows` silences), then lifecycle.opened for the ones that page.  In the
    transaction that inserted them."""
    if not incidents:
        return
    entries, paging = [], []
    for incident in incidents:
        entries.append(entry("incident.triggered", actor=actor, incident=incident, data=triggered[incident.pk]))
        if window := maintenance.first_match(windows, incident.labels):
            entries.append(
                entry("incident.paging_suppressed", actor=actor, incident=incident,
                      data={"maintenance_window": window.pk, "reason": window.reason, "until": window.ends_at.isoformat()})
            )
        else:
            paging.append(incident)
    record_all(entries)
    lifecycle.opened.send(sender=Incident, incidents=incidents, paging=paging, at=at)


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
        lifecycle.acknowledged.send(sender=Incident, incident=incident)
        changed(incident)
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
        lifecycle.unacknowledged.send(sender=Incident, incident=incident)
        changed(incident)
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
        if not lifecycle.answered(lifecycle.escalation_requested, incident=incident):
            raise TransitionError(f"Incident #{incident.number} has no escalation left to run (no policy, or all levels done).")
        record("incident.escalated", actor=actor, incident=incident)
        changed(incident)
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
        if not lifecycle.answered(lifecycle.snoozed, incident=incident, until=until):
            raise TransitionError(f"Incident #{incident.number} has no escalation policy to wake it up again.")
        record("incident.snoozed", actor=actor, incident=incident, data={"until": until.isoformat(), "minutes": minutes})
        changed(incident)
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
        lifecycle.resolved.send(sender=Incident, incident=incident)
        _release_children(incident)
        changed(incident)
    return incident


def _release_children(parent: Incident) -> None:
    """The cause is gone: incidents it held back page now if they are still open
    (Alertmanager's inhibition ends with the inhibiting alert)."""
    for child in parent.children.select_for_update().filter(status=Incident.Status.TRIGGERED):
        record("incident.released", actor=SYSTEM, incident=child, data={"parent": parent.number})
        lifecycle.released.send(sender=Incident, incident=child)
        changed(child)


def inhibit(incident: Incident, *, parent: Incident, actor: Actor, late: bool = False) -> None:
    """Hold an incident back: an open incident of a service it depends on is its
    cause (Alertmanager's inhibition).  The caller has the row locked; `late` says
    the cause was found after the incident had been announced."""
    incident.parent = parent
    incident.save(update_fields=["parent", "updated_at"])
    lifecycle.inhibited.send(sender=Incident, incident=incident)
    why = f"{incident.service.name} depends on {parent.service.name}, which has open incident #{parent.number}"
    record("incident.inhibited", actor=actor, incident=incident,
           data={"parent": parent.number, "service": parent.service.name,
                 "why": why + (" (found after this incident had been announced)" if late else "")})
    changed(incident)


def reclassify(incident: Incident | int, *, fields: dict, actor: Actor, data: dict) -> Incident:
    """The LLM's classification replaces the rules' (`fields`: Classification.incident_fields),
    but for the dimensions it could not tell, which the rules may have.  The severity
    is changed apart, by change_severity (advice a person may have overruled)."""
    with transaction.atomic():
        incident = _locked(incident)
        fields = {**fields, "llm_model": fields["llm_model"] or incident.llm_model,
                  "environment": fields["environment"] or incident.environment}
        for name, value in fields.items():
            setattr(incident, name, value)
        incident.save(update_fields=[*fields, "updated_at"])
        record("incident.classified", actor=actor, incident=incident, data=data)
    return incident


def merge(source: Incident | int, *, into: Incident | int, actor: Actor, reason: str = DedupReason.MERGED, detail: str = "") -> Incident:
    """Fold `source` into `into`: its alerts and keys move (later alerts of those keys
    join `into`), and `source` is resolved as merged.  Returns `into`."""
    source_pk = source.pk if isinstance(source, Incident) else source
    into_pk = into.pk if isinstance(into, Incident) else into
    if source_pk == into_pk:
        raise TransitionError("An incident cannot be merged into itself.")
    with transaction.atomic():
        # Keys before incidents, as ingest takes them, so the two cannot deadlock.
        keys = IncidentKey.objects.filter(incident_id=source_pk)
        for service_id in set(keys.values_list("service_id", flat=True)):
            dedup.lock_keys(service_id, keys.filter(service_id=service_id).values_list("key", flat=True))
        locked = {i.pk: i for i in Incident.objects.select_for_update().filter(pk__in=[source_pk, into_pk]).order_by("pk")}
        source, into = locked[source_pk], locked[into_pk]
        for incident in (source, into):
            if incident.status == Incident.Status.RESOLVED:
                raise TransitionError(f"Incident #{incident.number} is resolved; only open incidents can be merged.")
        teams = dict(Service.objects.filter(pk__in=[source.service_id, into.service_id]).values_list("pk", "team_id"))
        if teams[source.service_id] != teams[into.service_id]:
            # Its keys would move to another team's service: that team would own this team's alerts.
            raise TransitionError(f"Incident #{source.number} and #{into.number} belong to different teams; "
                                  "incidents are merged within a team only.")
        detail = detail or f"merged from #{source.number} by {actor.label}"
        Alert.objects.filter(incident=source).update(incident=into, dedup_reason=reason, dedup_detail=detail[:300])
        keys.filter(key__in=into.keys.values("key")).delete()
        keys.update(incident=into)
        source.children.update(parent=into)
        into.alert_count += source.alert_count
        into.first_alert_at = min(into.first_alert_at, source.first_alert_at)
        into.last_alert_at = max(into.last_alert_at, source.last_alert_at)
        into.save(update_fields=["alert_count", "first_alert_at", "last_alert_at", "updated_at"])
        moved = source.alert_count
        source.status = Incident.Status.RESOLVED
        source.resolved_at = timezone.now()
        source.resolved_by = actor.user
        source.merged_into = into
        source.alert_count = 0
        source.settling = False
        source.save(update_fields=["status", "resolved_at", "resolved_by", "merged_into", "alert_count", "settling", "updated_at"])
        lifecycle.merged.send(sender=Incident, incident=source)
        record("incident.merged", actor=actor, incident=source, data={"into": into.number, "reason": reason, "detail": detail})
        record("incident.merge_received", actor=actor, incident=into,
               data={"from": source.number, "alerts": moved, "reason": reason, "detail": detail})
        changed(source)
        changed(into)
    return into


def split(alert: Alert | int, *, actor: Actor) -> Incident:
    """Move an alert (with the other alerts of its key) out into a new incident.  The
    key goes with it, so its later alerts join the new incident, not the old one."""
    alert_pk = alert.pk if isinstance(alert, Alert) else alert
    with transaction.atomic():
        alert = Alert.objects.select_related("incident").get(pk=alert_pk)
        if alert.incident is None:
            raise TransitionError("This alert belongs to no incident.")
        dedup.lock_keys(alert.incident.service_id, [alert.dedup_key])
        source = _locked(alert.incident)
        if source.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{source.number} is resolved; split alerts out of open incidents only.")
        alerts = Alert.objects.filter(incident=source, dedup_key=alert.dedup_key)
        if not Alert.objects.filter(incident=source).exclude(dedup_key=alert.dedup_key).exists():
            raise TransitionError(f"Every alert of incident #{source.number} has this key; there is nothing to split from.")
        times = [a.received_at for a in alerts.only("received_at")]
        incident = new_incident(
            title=alert.title, severity=source.severity, service_id=source.service_id, dedup_key=alert.dedup_key,
            fingerprint=alert.fingerprint, labels=alert.labels, source=alert.source, alert_count=len(times),
            first_alert_at=min(times), last_alert_at=max(times),
        )
        incident.severity_source = source.severity_source  # the incident it came from had the best one known
        incident.save()
        alerts.update(incident=incident, dedup_reason=DedupReason.SPLIT,
                      dedup_detail=f"split out of #{source.number} by {actor.label}"[:300])
        moved = IncidentKey.objects.filter(incident=source, key=alert.dedup_key).update(incident=incident, firing=True)
        if not moved:
            IncidentKey.objects.create(service_id=source.service_id, key=alert.dedup_key, incident=incident)
        # ... and never comes back to `source` by grouping or similarity while it is open.
        IncidentKey.objects.create(
            service_id=source.service_id, key=alert.dedup_key, kind=IncidentKey.Kind.APART, incident=source, firing=False
        )
        source.alert_count -= len(times)
        source.save(update_fields=["alert_count", "updated_at"])
        record("incident.split", actor=actor, incident=source, data={"alert": alert.pk, "to": incident.number, "alerts": len(times)})
        triggered = {"alert": alert.pk, "dedup_key": alert.dedup_key, "severity": incident.severity, "split_from": source.number}
        opened([incident], triggered={incident.pk: triggered}, actor=actor, at=timezone.now())
        changed(source)
        changed(incident)
    return incident


def reassign(incident: Incident | int, *, assignee, actor: Actor) -> Incident:
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is resolved; reopen it before reassigning.")
        if not assignee.is_active:
            raise TransitionError(f"{assignee.get_username()} is not an active user.")
        team_id = Service.objects.filter(pk=incident.service_id).values_list("team_id", flat=True).get()
        if not roles.can_respond(assignee, team_id):
            raise TransitionError(f"{assignee.get_username()} is not a responder of the team of incident #{incident.number}.")
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
        changed(incident)
    return incident


def change_severity(incident: Incident | int, *, severity: str, actor: Actor, by: str = "person") -> Incident | None:
    """Set the severity; escalation re-plans for it (lifecycle.severity_changed).

    `by` says who decided: "person" (through the portal or the API) or "llm".  The
    best severity known wins: a person's over the sender's over a classifier's.  So
    the LLM's opinion changes only a severity the rules (or it) gave, of an incident
    nobody has acknowledged (None otherwise).  An incident whose paging a
    maintenance window suppressed keeps not paging.
    """
    if severity not in Severity.values:
        raise ValueError(f"Unknown severity {severity!r}.")
    source = Incident.SeveritySource.LLM if by == "llm" else Incident.SeveritySource.PERSON
    with transaction.atomic():
        incident = _locked(incident)
        if incident.status == Incident.Status.RESOLVED:
            raise TransitionError(f"Incident #{incident.number} is resolved; its severity is final.")
        classified = incident.severity_source in (Incident.SeveritySource.RULES, Incident.SeveritySource.LLM)
        if by == "llm" and (incident.status != Incident.Status.TRIGGERED or not classified):
            return None
        if incident.severity == severity:
            return incident
        previous, incident.severity, incident.severity_source = incident.severity, severity, source
        incident.save(update_fields=["severity", "severity_source", "updated_at"])
        record(
            "incident.severity_changed",
            actor=actor,
            incident=incident,
            data={"from": previous, "to": severity, "by": by},
        )
        suppressed = AuditEntry.objects.filter(incident=incident, verb="incident.paging_suppressed").exists()
        lifecycle.severity_changed.send(sender=Incident, incident=incident, paging=not suppressed)
        changed(incident)
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
        changed(incident)
    return incident
