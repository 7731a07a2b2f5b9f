"""Heartbeats (dead man's switch): a job pings us; silence is the alert.

A heartbeat integration expects a ping at least every `heartbeat_minutes`.  The
beat task `check_heartbeats` opens an incident (through ingest(), like any alert)
for each one that went quiet, and the next ping resolves it.  Both take the
integration's row lock, so a ping racing the check cannot leave an incident open.
"""

from datetime import timedelta

from django.db import transaction
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Coalesce
from django.utils import timezone

from apps.incidents.events import AlertEvent, label_fingerprint
from apps.incidents.models import Incident, Severity

from .inbound import accept
from .models import Integration


def _event(integration: Integration, status: str, now) -> AlertEvent:
    key = f"heartbeat:{integration.pk}"
    return AlertEvent(
        title=f"Heartbeat missed: {integration.name}",
        description=(
            f"No ping for more than {integration.heartbeat_minutes} minutes"
            + (f" (last one at {integration.last_ping_at:%Y-%m-%d %H:%M:%S} UTC)." if integration.last_ping_at else ".")
        ),
        status=status,
        severity=Severity.HIGH,
        severity_from="a missed heartbeat",
        dedup_key=key,
        fingerprint=label_fingerprint({"heartbeat": str(integration.pk)}),
        source="heartbeat",
        labels={"heartbeat": integration.name},
        payload={
            "integration": integration.pk,
            "last_ping_at": integration.last_ping_at.isoformat() if integration.last_ping_at else None,
            "at": now.isoformat(),
        },
    )


def _open_incident_exists(integration: Integration) -> bool:
    return (
        Incident.objects.filter(service_id=integration.service_id, dedup_key=f"heartbeat:{integration.pk}")
        .exclude(status=Incident.Status.RESOLVED)
        .exists()
    )


def record_ping(integration: Integration) -> bool:
    """Note a ping; resolve the missed-heartbeat incident if one is open.  True if it did."""
    now = timezone.now()
    with transaction.atomic():
        integration = Integration.objects.select_for_update().get(pk=integration.pk)
        # Not save(): a ping is no change of settings (versioned_copy would reload them).
        Integration.objects.filter(pk=integration.pk).update(last_ping_at=now)
        integration.last_ping_at = now
        if not _open_incident_exists(integration):
            return False
        accept(integration, [_event(integration, "resolved", now)])
    return True


def check_heartbeats(now=None) -> int:
    """Open an incident for every active heartbeat that went quiet; return how many.
    Safe to run twice or side by side: each integration is re-checked under its lock."""
    now = now or timezone.now()
    opened = 0
    for pk in _quiet(now):
        with transaction.atomic():
            integration = Integration.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if integration is None:
                continue  # a ping holds it right now
            since = integration.last_ping_at or integration.created_at
            if since >= now - timedelta(minutes=integration.heartbeat_minutes) or _open_incident_exists(integration):
                continue
            accept(integration, [_event(integration, "firing", now)])
            opened += 1
    return opened


def _quiet(now) -> list[int]:
    interval = ExpressionWrapper(F("heartbeat_minutes") * timedelta(minutes=1), output_field=DurationField())
    return list(
        Integration.objects.filter(kind=Integration.Kind.HEARTBEAT, is_active=True, heartbeat_minutes__isnull=False)
        .annotate(since=Coalesce("last_ping_at", "created_at"))
        .filter(since__lt=now - interval)
        .values_list("pk", flat=True)
    )
