"""ingest(): AlertEvents in, incidents out, in one transaction.

A firing event joins the open incident of its service with the same dedup key or
opens a new one.  The partial unique index on open incidents
(one_open_incident_per_dedup_key) decides races: an insert that collides with a
concurrent one does nothing, and the event then joins the winner's incident.

The firing path is one SQL statement (_FIRING_SQL): it is the hot path of an alert
storm, Django's ORM has no UPDATE … RETURNING, and on this 2-core machine every
round trip and every ORM query compiled costs about as much as the work itself
(bench/ingest.py; README).
"""

from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.audit.services import Actor, record
from apps.escalation import services as escalation
from apps.integrations import outbox

from . import live, maintenance, services, tasks
from .classification import classify
from .events import AlertEvent
from .models import Alert, Incident

# Append to the open incident of the key, or open one, and store the alert: one
# statement, one round trip.  It returns no row only when a concurrent ingest
# opened the incident between our UPDATE and INSERT: then we run it again, and
# the UPDATE finds the winner's incident.
_FIRING_SQL = """
WITH appended AS (
    UPDATE incidents_incident
       SET alert_count = alert_count + 1,
           last_alert_at = GREATEST(last_alert_at, %(at)s),
           updated_at = %(at)s
     WHERE service_id = %(service_id)s AND dedup_key = %(dedup_key)s AND status <> 'resolved'
    RETURNING id, number, false AS created
), opened AS (
    INSERT INTO incidents_incident
           (title, description, status, severity, service_id, dedup_key, fingerprint, labels,
            alert_count, first_alert_at, last_alert_at, created_at, updated_at,
            category, llm_model, environment, classified_severity, classification_confidence,
            classification_rationale, classified_by)
    SELECT %(title)s, %(description)s, 'triggered', %(severity)s, %(service_id)s, %(dedup_key)s,
           %(fingerprint)s, %(labels)s, 1, %(at)s, %(at)s, %(at)s, %(at)s,
           %(category)s, %(llm_model)s, %(environment)s, %(classified_severity)s, %(confidence)s,
           %(rationale)s, 'rules'
     WHERE NOT EXISTS (SELECT 1 FROM appended)
    ON CONFLICT (service_id, dedup_key) WHERE status <> 'resolved' DO NOTHING
    RETURNING id, number, true AS created
), target AS (
    SELECT * FROM appended UNION ALL SELECT * FROM opened
)
INSERT INTO incidents_alert
       (incident_id, integration_id, source, status, title, severity, dedup_key, fingerprint,
        group_key, labels, payload, deduplicated, starts_at, received_at)
SELECT target.id, %(integration_id)s, %(source)s, 'firing', %(title)s, %(severity)s, %(dedup_key)s,
       %(fingerprint)s, %(group_key)s, %(labels)s, %(payload)s, NOT target.created, %(starts_at)s, %(at)s
  FROM target
RETURNING id, incident_id, (SELECT number FROM target), NOT deduplicated
"""


@dataclass(frozen=True)
class IngestResult:
    alert_id: int
    incident_id: int | None
    incident_number: int | None
    deduplicated: bool
    action: str  # "created", "appended", "acknowledged", "resolved" or "ignored"

    def as_dict(self) -> dict:
        return {
            "alert": self.alert_id,
            "incident": self.incident_id,
            "incident_number": self.incident_number,
            "deduplicated": self.deduplicated,
            "action": self.action,
        }


def ingest(events: list[AlertEvent], *, service_id: int, integration_id: int | None, actor: Actor) -> list[IngestResult]:
    """Store every event as an Alert and fold it into an incident; all or nothing."""
    now = timezone.now()
    # Take the incidents' row locks in one global order (by dedup key), so that two
    # requests carrying overlapping alerts in different orders cannot deadlock.
    order = sorted(range(len(events)), key=lambda i: events[i].dedup_key)
    results: list[IngestResult | None] = [None] * len(events)
    with transaction.atomic():
        for i in order:
            results[i] = _ingest_one(
                events[i], service_id=service_id, integration_id=integration_id, actor=actor, at=now
            )
        # robust: the alerts are committed whatever happens next; a Redis hiccup must
        # not turn a stored alert into an error for the sender.
        transaction.on_commit(lambda: _publish(results), robust=True)
    return results


def _publish(results: list[IngestResult]) -> None:
    """Tell the portal (the lifecycle verbs have already told it about what they changed)
    and queue the LLM's look at new incidents."""
    created = {r.incident_id for r in results if r.action == "created"}
    appended = {r.incident_id for r in results if r.action == "appended"} - created
    for incident_id in sorted(created):
        live.publish_incident_changed(incident_id, created=True)
        if settings.ANTHROPIC_API_KEY:
            tasks.second_opinion.delay(incident_id)
    for incident_id in sorted(appended):
        live.publish_incident_changed_throttled(incident_id)
        outbox.alerts_appended(incident_id)  # throttled Slack thread replies


def _ingest_one(event: AlertEvent, *, service_id, integration_id, actor, at) -> IngestResult:
    if event.status != Alert.Status.FIRING:
        return _transition(event, service_id=service_id, integration_id=integration_id, actor=actor, at=at)
    params = {
        "service_id": service_id,
        "integration_id": integration_id,
        "dedup_key": event.dedup_key,
        "at": at,
        "title": event.title,
        "description": event.description,
        "severity": event.severity,
        "fingerprint": event.fingerprint,
        "labels": Jsonb(event.labels),
        "source": event.source,
        "group_key": event.group_key,
        "payload": Jsonb(event.payload),
        "starts_at": event.starts_at,
        # The rules' verdict, stored if this alert opens the incident (microseconds, no I/O).
        **_classification(event),
    }
    with connection.cursor() as cursor:
        row = None
        while row is None:
            cursor.execute(_FIRING_SQL, params)
            row = cursor.fetchone()
    alert_id, incident_id, number, created = row
    if created:
        record(
            "incident.triggered",
            actor=actor,
            incident=Incident(pk=incident_id),
            data={"alert": alert_id, "dedup_key": event.dedup_key, "severity": event.severity},
        )
        if window := maintenance.window_for(service_id, event.labels, at):
            record(
                "incident.paging_suppressed",
                actor=actor,
                incident=Incident(pk=incident_id),
                data={"maintenance_window": window.pk, "reason": window.reason, "until": window.ends_at.isoformat()},
            )
        else:
            # The escalation timer starts with the incident, in its transaction.
            escalation.start(Incident(pk=incident_id, service_id=service_id, severity=event.severity), now=at)
            # The outbox rows announcing it (Slack channel, webhooks), in this transaction.
            outbox.announce(incident_id, service_id)
        return IngestResult(alert_id, incident_id, number, False, "created")
    return IngestResult(alert_id, incident_id, number, True, "appended")


def _classification(event: AlertEvent) -> dict:
    verdict = classify(event.title, event.description, event.labels)
    return {
        "category": verdict.category,
        "llm_model": verdict.model,
        "environment": verdict.environment,
        "classified_severity": verdict.severity,
        "confidence": verdict.confidence,
        "rationale": verdict.rationale[:300],
    }


def _transition(event: AlertEvent, *, service_id, integration_id, actor, at) -> IngestResult:
    """A sender's "resolved" (or "acknowledged") for its key: applied to the open
    incident of the key through the lifecycle verbs, like anyone else's."""
    incident = (
        Incident.objects.select_for_update()
        .filter(service_id=service_id, dedup_key=event.dedup_key)
        .exclude(status=Incident.Status.RESOLVED)
        .first()
    )
    acknowledging = event.status == Alert.Status.ACKNOWLEDGED
    # The alert is kept in any case, on the open incident of the key or else the latest one.
    target = incident or (
        Incident.objects.filter(service_id=service_id, dedup_key=event.dedup_key).order_by("-created_at").first()
    )
    if target is not None:
        Incident.objects.filter(pk=target.pk).update(alert_count=F("alert_count") + 1, last_alert_at=at)
    alert = _store_alert(event, target and target.pk, integration_id, target is not None, at)
    if incident is None or (acknowledging and incident.status != Incident.Status.TRIGGERED):
        # Nothing to change: never seen, already resolved, or already acknowledged.
        number = target.number if target else None
        return IngestResult(alert.pk, target and target.pk, number, target is not None, "ignored")
    if acknowledging:
        services.acknowledge(incident, actor=actor)
        return IngestResult(alert.pk, incident.pk, incident.number, True, "acknowledged")
    services.resolve(incident, actor=actor, reason="resolved by the sender")
    return IngestResult(alert.pk, incident.pk, incident.number, True, "resolved")


def _store_alert(event: AlertEvent, incident_id, integration_id, deduplicated, at) -> Alert:
    return Alert.objects.create(
        incident_id=incident_id,
        integration_id=integration_id,
        source=event.source,
        status=event.status,
        title=event.title,
        severity=event.severity,
        dedup_key=event.dedup_key,
        fingerprint=event.fingerprint,
        group_key=event.group_key,
        labels=event.labels,
        payload=event.payload,
        deduplicated=deduplicated,
        starts_at=event.starts_at,
        received_at=at,
    )
