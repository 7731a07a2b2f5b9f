"""Reads for the portal: plain functions returning querysets (writes live in services.py)."""

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from apps.accounts import roles
from apps.audit.models import AuditEntry

from .models import Alert, Incident

ALERTS_SHOWN = 100


def _incidents() -> QuerySet[Incident]:
    # The embedding is only for similarity search; never ship it to a page.
    return Incident.objects.select_related("service", "acknowledged_by", "resolved_by", "assignee").defer("embedding")


def visible(principal) -> QuerySet[Incident]:
    """The incidents of the teams `principal` may read (apps.accounts.roles)."""
    return roles.scoped(_incidents(), principal)


def incident_list(principal, *, status: str = "", severity: str = "", service=None) -> QuerySet[Incident]:
    """The principal's incidents newest first, narrowed by whichever filters are given."""
    incidents = visible(principal).order_by("-created_at", "-pk")
    if status:
        incidents = incidents.filter(status=status)
    if severity:
        incidents = incidents.filter(severity=severity)
    if service:
        incidents = incidents.filter(service=service)
    return incidents


def incident(principal, pk: int) -> Incident:
    """One of the principal's incidents; 404 for another team's, as for none."""
    return get_object_or_404(visible(principal).select_related("merged_into", "parent__service"), pk=pk)


def children(incident: Incident) -> QuerySet[Incident]:
    """Incidents held back because this one is their likely cause."""
    return incident.children.select_related("service").defer("embedding").order_by("created_at")


def recent_alerts(incident: Incident, limit: int = ALERTS_SHOWN) -> list[Alert]:
    """The newest alerts of an incident; a noisy one may have thousands."""
    return list(incident.alerts.order_by("-received_at", "-pk")[:limit])


def timeline(incident: Incident) -> QuerySet[AuditEntry]:
    return AuditEntry.objects.filter(incident=incident).select_related("actor").order_by("at", "pk")
