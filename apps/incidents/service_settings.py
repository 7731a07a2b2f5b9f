"""What ingest reads about a service on every request, kept in each process
(incident_manager/versioned_copy.py): its grouping rules, its maintenance windows,
and whether its new incidents are settled (apps/incidents/settle.py) before paging."""

from dataclasses import dataclass
from datetime import datetime

from django.utils import timezone

from incident_manager.versioned_copy import VersionedCopy

from . import dedup, maintenance, settle
from .models import GroupingRule, MaintenanceWindow, Service


@dataclass(frozen=True)
class ServiceSettings:
    grouping_rules: list[GroupingRule]
    windows: list[MaintenanceWindow]  # those not yet over when read
    settle_first: bool

    def windows_at(self, at: datetime) -> list[MaintenanceWindow]:
        return [w for w in self.windows if w.starts_at <= at < w.ends_at]


_known = VersionedCopy("service-settings", dict)
_known.watch(Service, Service.depends_on.through, GroupingRule, MaintenanceWindow)


def for_service(service_id: int) -> ServiceSettings:
    known = _known.get()
    if service_id not in known:
        known[service_id] = ServiceSettings(
            grouping_rules=dedup.grouping_rules(service_id),
            windows=maintenance.not_over(service_id, timezone.now()),
            settle_first=settle.needed(service_id),
        )
    return known[service_id]
