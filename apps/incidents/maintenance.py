from django.db.models import Q

from .models import MaintenanceWindow


def active_windows(service_id: int, at) -> list[MaintenanceWindow]:
    """The windows in force for a service now (one query per ingest request)."""
    return list(
        MaintenanceWindow.objects.filter(
            Q(service_id=service_id) | Q(service__isnull=True), starts_at__lte=at, ends_at__gt=at
        )
    )


def first_match(windows: list[MaintenanceWindow], labels: dict[str, str]) -> MaintenanceWindow | None:
    """The window that silences an alert with these labels."""
    return next((window for window in windows if window.matches(labels)), None)
