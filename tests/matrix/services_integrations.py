"""The configuration API of services, maintenance windows, integrations and runbooks
(issue 17): team viewers read, team admins write; another team's object is a 404; a
runbook or maintenance window of no service is everyone's to read."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.assist.models import Runbook
from apps.incidents.models import MaintenanceWindow

from tests.test_access_matrix import Entry, row

S = ApiKey.Scope
READ = row(401, 200, 200, 200, 404, 200, 200, 403)  # an object of team A
LIST = row(401, 200, 200, 200, 200, 200, 200, 403)  # each sees its own teams'
SHARED = LIST  # an object of no team: everyone's to read
CREATE = row(401, 403, 403, "ok", 403, "ok", "ok", 403)


def detail(name, which):
    return lambda w: reverse(name, args=[w[which].pk])


def listed(name):
    return lambda w: reverse(name)


def _window(w):
    now = timezone.now()
    return {"service": "a", "starts_at": now.isoformat(), "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "m"}


ENTRIES = {
    "api:service-list": Entry("get", listed("api:service-list"), LIST, scope=S.SERVICES_READ),
    "api:service-list#create": Entry("post", listed("api:service-list"), CREATE,
                                     lambda w: {"name": "New", "slug": "new", "team": "team-a"}, S.SERVICES_WRITE),
    "api:service-detail": Entry("get", detail("api:service-detail", "service"), READ, scope=S.SERVICES_READ),
    "api:maintenance-window-list": Entry("get", listed("api:maintenance-window-list"), LIST, scope=S.SERVICES_READ),
    "api:maintenance-window-list#create": Entry("post", listed("api:maintenance-window-list"), CREATE, _window, S.SERVICES_WRITE),
    "api:maintenance-window-detail": Entry("get", detail("api:maintenance-window-detail", "maintenance_window"), READ,
                                           scope=S.SERVICES_READ),
    "api:maintenance-window-detail#shared": Entry("get", detail("api:maintenance-window-detail", "shared_window"), SHARED,
                                                  scope=S.SERVICES_READ),
    "integrations-api:integration-list": Entry("get", listed("integrations-api:integration-list"), LIST,
                                               scope=S.INTEGRATIONS_READ),
    "integrations-api:integration-list#create": Entry("post", listed("integrations-api:integration-list"), CREATE,
                                                      lambda w: {"name": "new", "kind": "generic", "service": "a"},
                                                      S.INTEGRATIONS_WRITE),
    "integrations-api:integration-detail": Entry("get", detail("integrations-api:integration-detail", "integration"), READ,
                                                 scope=S.INTEGRATIONS_READ),
    "assist-api:runbook-list": Entry("get", listed("assist-api:runbook-list"), LIST, scope=S.RUNBOOKS_READ),
    "assist-api:runbook-list#create": Entry("post", listed("assist-api:runbook-list"), CREATE,
                                            lambda w: {"title": "t", "body": "b", "service": "a"}, S.RUNBOOKS_WRITE),
    "assist-api:runbook-detail": Entry("get", detail("assist-api:runbook-detail", "runbook"), READ, scope=S.RUNBOOKS_READ),
    "assist-api:runbook-detail#shared": Entry("get", detail("assist-api:runbook-detail", "shared_runbook"), SHARED,
                                              scope=S.RUNBOOKS_READ),
}


def extend(world):
    now = timezone.now()
    world["maintenance_window"] = MaintenanceWindow.objects.create(
        service=world["service"], starts_at=now, ends_at=now + timedelta(hours=1), reason="upgrade")
    world["shared_window"] = MaintenanceWindow.objects.create(starts_at=now, ends_at=now + timedelta(hours=1), reason="all")
    world["shared_runbook"] = Runbook.objects.create(title="for everyone", body="…")
