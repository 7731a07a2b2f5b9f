"""What ingest reads about a service on every request, kept in each process
(incident_manager/versioned_copy.py): its grouping rules, its identifying labels,
its maintenance windows, and whether its new incidents are settled
(apps/incidents/settle.py) before paging."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from incident_manager.versioned_copy import VersionedCopy

from . import dedup, identity, maintenance, settle
from .models import GroupingRule, MaintenanceWindow, Service


@dataclass(frozen=True)
class ServiceSettings:
    grouping_rules: list[GroupingRule]
    identifying: tuple[str, ...]
    windows: list[MaintenanceWindow]  # those not yet over when read
    settle_first: bool

    def windows_at(self, at: datetime) -> list[MaintenanceWindow]:
        return [w for w in self.windows if w.starts_at <= at < w.ends_at]


_known = VersionedCopy("service-settings", dict)
_known.watch(Service, Service.depends_on.through, GroupingRule, MaintenanceWindow)


def for_service(service_id: int) -> ServiceSettings:
    known = _known.get()
    if service_id not in known:
        rules = dedup.grouping_rules(service_id)
        configured = Service.objects.filter(pk=service_id).values_list("identifying_labels", flat=True).first()
        known[service_id] = ServiceSettings(
            grouping_rules=rules,
            identifying=identity.labels_of(configured, rules),
            windows=maintenance.not_over(service_id, timezone.now()),
            settle_first=settle.needed(service_id),
        )
    return known[service_id]
