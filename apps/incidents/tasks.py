from datetime import timedelta

from celery import shared_task
from django.db.models import DurationField, ExpressionWrapper, F
from django.db.models.functions import Now

from apps.audit.services import SYSTEM

from . import services, settle as settling, triage
from .models import Incident


@shared_task
def second_opinion(incident_id: int) -> str:
    """After a new incident commits: the LLM's classification when the rules were unsure."""
    return triage.second_opinion(incident_id)


@shared_task
def second_opinions_overdue() -> int:
    """Beat: the second opinions whose task was never queued or was lost."""
    ids = triage.unasked()
    for incident_id in ids:
        second_opinion.delay(incident_id)
    return len(ids)


@shared_task
def settle(incident_ids: list[int]) -> dict:
    """Right after new incidents commit: similarity and dependencies, before any page."""
    return settling.settle(incident_ids)


@shared_task
def settle_overdue() -> dict:
    """Incidents still settling a few seconds after they opened (their task was lost)."""
    return settling.settle(settling.overdue_ids())


@shared_task
def auto_resolve_stale() -> int:
    """Resolve open incidents of services with an auto-resolve timeout once no alert
    has arrived for that long (PagerDuty's "auto-resolution").  Safe to run twice:
    resolve() refuses an incident that is already resolved."""
    stale = (
        Incident.objects.exclude(status=Incident.Status.RESOLVED)
        .filter(service__auto_resolve_minutes__isnull=False)
        .annotate(
            timeout=ExpressionWrapper(F("service__auto_resolve_minutes") * timedelta(minutes=1), output_field=DurationField())
        )
        .filter(last_alert_at__lt=Now() - F("timeout"))
        .values_list("pk", flat=True)
    )
    resolved = 0
    for pk in stale:
        try:
            services.resolve(pk, actor=SYSTEM, reason="no alert within the service's auto-resolve timeout")
        except services.TransitionError:
            continue  # resolved meanwhile by someone else
        resolved += 1
    return resolved
