from django.db.models import Q

from .models import MaintenanceWindow


def not_over(service_id: int, now) -> list[MaintenanceWindow]:
    """The service's windows (and the global ones) in force now or still to come."""
    return list(MaintenanceWindow.objects.filter(Q(service_id=service_id) | Q(service__isnull=True), ends_at__gt=now))


def first_match(windows: list[MaintenanceWindow], labels: dict[str, str]) -> MaintenanceWindow | None:
    """The window that silences an alert with these labels."""
    return next((window for window in windows if window.matches(labels)), None)
