"""ingest(): AlertEvents in, incidents out, in one transaction.

A firing event joins the open incident of its service with the same dedup key or
opens a new one.  The partial unique index on open incidents
(one_open_incident_per_dedup_key) decides races: an insert that collides with a
concurrent one does nothing, and the event then joins the winner's incident.
The upsert is SQL because it is the hot path and Django's ORM has no
UPDATE … RETURNING; it costs two statements in the common cases.
"""

from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone
from psycopg.types.json import Jsonb

from apps.audit.services import Actor, record

from . import services
from .events import AlertEvent
from .models import Alert, Incident
from .tasks import after_ingest

_APPEND_SQL = """
UPDATE incidents_incident
   SET alert_count = alert_count + 1,
       last_alert_at = GREATEST(last_alert_at, %(at)s),
       updated_at = %(at)s
 WHERE service_id = %(service_id)s AND dedup_key = %(dedup_key)s AND status <> 'resolved'
RETURNING id, number
"""

_OPEN_SQL = """
INSERT INTO incidents_incident
       (title, description, status, severity, service_id, dedup_key, fingerprint, labels,
        alert_count, first_alert_at, last_alert_at, created_at, updated_at)
VALUES (%(title)s, %(description)s, 'triggered', %(severity)s, %(service_id)s, %(dedup_key)s,
        %(fingerprint)s, %(labels)s, 1, %(at)s, %(at)s, %(at)s, %(at)s)
ON CONFLICT (service_id, dedup_key) WHERE status <> 'resolved' DO NOTHING
RETURNING id, number
"""


@dataclass(frozen=True)
class IngestResult:
    alert_id: int
    incident_id: int | None
    incident_number: int | None
    deduplicated: bool
    action: str  # "created", "appended", "resolved" or "ignored"

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
    with transaction.atomic():
        results = [
            _ingest_one(event, service_id=service_id, integration_id=integration_id, actor=actor, at=now)
            for event in events
        ]
        touched = sorted({r.incident_id for r in results if r.incident_id is not None})
        created = sorted({r.incident_id for r in results if r.action == "created"})
        if touched:
            # robust: the alerts are committed whatever happens to this follow-up; a
            # broker hiccup must not turn a stored alert into an error for the sender.
            transaction.on_commit(lambda: after_ingest.delay(touched, created), robust=True)
    return results


def _ingest_one(event: AlertEvent, *, service_id, integration_id, actor, at) -> IngestResult:
    if event.status == Alert.Status.RESOLVED:
        return _resolve(event, service_id=service_id, integration_id=integration_id, actor=actor, at=at)
    params = {
        "service_id": service_id,
        "dedup_key": event.dedup_key,
        "at": at,
        "title": event.title,
        "description": event.description,
        "severity": event.severity,
        "fingerprint": event.fingerprint,
        "labels": Jsonb(event.labels),
    }
    with connection.cursor() as cursor:
        while True:
            cursor.execute(_APPEND_SQL, params)
            row = cursor.fetchone()
            if row:
                action, deduplicated = "appended", True
                break
            cursor.execute(_OPEN_SQL, params)
            row = cursor.fetchone()
            if row:
                action, deduplicated = "created", False
                break
            # A concurrent ingest opened it between our two statements: join it.
    incident_id, number = row
    alert = _store_alert(event, incident_id, integration_id, deduplicated, at)
    if action == "created":
        record(
            "incident.triggered",
            actor=actor,
            incident=Incident(pk=incident_id),
            data={"alert": alert.pk, "dedup_key": event.dedup_key, "severity": event.severity},
        )
    return IngestResult(alert.pk, incident_id, number, deduplicated, action)


def _resolve(event: AlertEvent, *, service_id, integration_id, actor, at) -> IngestResult:
    incident = (
        Incident.objects.select_for_update()
        .filter(service_id=service_id, dedup_key=event.dedup_key)
        .exclude(status=Incident.Status.RESOLVED)
        .first()
    )
    if incident is None:
        # Nothing open for this key (already resolved, or never seen): keep the alert,
        # next to the latest incident of the key if there is one.
        latest = (
            Incident.objects.filter(service_id=service_id, dedup_key=event.dedup_key)
            .order_by("-created_at")
            .values_list("pk", "number")
            .first()
        )
        incident_id, number = latest or (None, None)
        alert = _store_alert(event, incident_id, integration_id, incident_id is not None, at)
        return IngestResult(alert.pk, incident_id, number, incident_id is not None, "ignored")
    Incident.objects.filter(pk=incident.pk).update(alert_count=incident.alert_count + 1, last_alert_at=at)
    alert = _store_alert(event, incident.pk, integration_id, True, at)
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
