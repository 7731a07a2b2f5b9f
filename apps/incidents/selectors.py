"""Reads for the portal: plain functions returning querysets (writes live in services.py)."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.audit.models import AuditEntry

from .models import Alert, Incident

ALERTS_SHOWN = 100


def _incidents() -> QuerySet[Incident]:
    # The embedding is only for similarity search; never ship it to a page.
    return Incident.objects.select_related("service", "acknowledged_by", "resolved_by", "assignee").defer("embedding")


def incident_list(*, status: str = "", severity: str = "", service=None) -> QuerySet[Incident]:
    """Incidents newest first, narrowed by whichever filters are given."""
    incidents = _incidents().order_by("-created_at", "-pk")
    if status:
        incidents = incidents.filter(status=status)
    if severity:
        incidents = incidents.filter(severity=severity)
    if service:
        incidents = incidents.filter(service=service)
    return incidents


def incident(pk: int) -> Incident:
    return get_object_or_404(_incidents().select_related("merged_into", "parent__service"), pk=pk)


def children(incident: Incident) -> QuerySet[Incident]:
    """Incidents held back because this one is their likely cause."""
    return incident.children.select_related("service").defer("embedding").order_by("created_at")


def recent_alerts(incident: Incident, limit: int = ALERTS_SHOWN) -> list[Alert]:
    """The newest alerts of an incident; a noisy one may have thousands."""
    return list(incident.alerts.order_by("-received_at", "-pk")[:limit])


def timeline(incident: Incident) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(incident=incident).select_related("actor").order_by("at", "pk")
