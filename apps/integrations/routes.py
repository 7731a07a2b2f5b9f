"""Routing: which service each of an integration's alerts goes to, by its labels.

The first active route (by position) whose matchers all hold takes the alert; no
route takes it: the integration's own service (the default route).  A route whose
service is deleted or disabled sends its alerts to the default route, and the
alert says so.  Routing never turns an alert away: Alertmanager drops an alert
answered with a 4xx for good.

Routes are compiled once per process (incident_manager/versioned_copy.py), not
read per alert: an admin's change reaches every process within a second.
"""

from dataclasses import dataclass

from apps.incidents.models import Service
from incident_manager.versioned_copy import VersionedCopy

from . import matchers
from .models import Integration, Route
from .parsers import parse


@dataclass(frozen=True)
class Routed:
    service_id: int
    route: str  # which route took the alert, for Alert.route ("Why here")


@dataclass(frozen=True)
class CompiledRoute:
    name: str
    matchers: list[matchers.Matcher]
    service_id: int | None  # None: deleted or disabled
    service_name: str

    def describe(self) -> str:
        return f"route “{self.name}” ({', '.join(map(str, self.matchers))})"


def _load_routes(integration_id: int) -> list[CompiledRoute]:
    compiled = []
    for route in Route.objects.filter(integration_id=integration_id, is_active=True).select_related("service"):
        try:
            parsed = route.compiled()
        except matchers.MatcherError:
            continue  # saved routes passed clean(); one broken by hand in the database is skipped
        service = route.service
        usable = service is not None and service.is_active
        compiled.append(CompiledRoute(
            route.name or f"#{route.pk}", parsed, service.pk if usable else None,
            service.name if service else "(deleted)",
        ))
    return compiled


_known = VersionedCopy("integration-routes", dict)
_known.watch(Route, Service, Integration)


def routes_of(integration: Integration) -> list[CompiledRoute]:
    known = _known.get()
    if integration.pk not in known:
        known[integration.pk] = _load_routes(integration.pk)
    return known[integration.pk]


def route(integration: Integration, labels: dict[str, str], routes: list[CompiledRoute] | None = None) -> Routed:
    """Where an alert with these labels goes."""
    for candidate in routes if routes is not None else routes_of(integration):
        if matchers.all_match(candidate.matchers, labels):
            if candidate.service_id is None:
                return Routed(integration.service_id, f"{candidate.describe()} names service “{candidate.service_name}”, "
                              "which is deleted or disabled: default route")
            return Routed(candidate.service_id, candidate.describe())
    return Routed(integration.service_id, "default route")


def route_all(integration: Integration, events) -> list[Routed] | None:
    """Where each event goes; None when the integration has no routes (all go to its service)."""
    if not (routes := routes_of(integration)):
        return None
    return [route(integration, event.labels, routes) for event in events]


@dataclass(frozen=True)
class Preview:
    title: str
    labels: dict[str, str]
    service: str
    route: str


def preview(integration: Integration, data) -> list[Preview]:
    """Where each alert of a sender's payload (parsed JSON) would go, by the routes as
    saved now: admin's and the API's "test this payload".  Raises PayloadError as
    ingest would; writes nothing."""
    events = parse(integration, data)
    routes = _load_routes(integration.pk)
    names = dict(Service.objects.values_list("pk", "name"))
    previews = []
    for event in events:
        routed = route(integration, event.labels, routes)
        previews.append(Preview(event.title, event.labels, names.get(routed.service_id, "?"),
                                routed.route if routes else "default route (the integration has no routes)"))
    return previews
