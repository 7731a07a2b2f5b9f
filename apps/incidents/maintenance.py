from django.db.models import Q

from .models import MaintenanceWindow


def window_for(service_id: int, labels: dict[str, str], at) -> MaintenanceWindow | None:
    """The maintenance window that silences an alert of this service with these labels now."""
    windows = MaintenanceWindow.objects.filter(
        Q(service_id=service_id) | Q(service__isnull=True), starts_at__lte=at, ends_at__gt=at
    )
    return next((window for window in windows if window.matches(labels)), None)
