"""Every URL × every kind of caller, against the answer each should get.

Team A owns the objects the URLs name; team B is another team.  Callers: nobody,
team A's viewer, responder and admin, team B's responder, an organisation admin
(superuser), and team A keys with and without the scope the URL needs.  A URL
added without an entry in MATRIX fails test_every_url_has_an_entry.

Expected answers: a status code, "login" (a redirect to the sign-in page), or "ok"
(any 2xx, or a redirect elsewhere: the portal's forms redirect after a change).
Each request runs in a transaction rolled back afterwards, so every caller meets
the same state.
"""

from dataclasses import dataclass, field

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.test import Client
from django.urls import URLResolver, get_resolver, reverse
from django.utils import timezone

from apps.accounts.models import ApiKey, Membership
from apps.accounts.services import create_api_key
from apps.assist.models import Postmortem, Runbook
from apps.incidents.models import Alert
from apps.integrations.models import Route
from apps.integrations.services import create_integration
from apps.audit.services import SYSTEM
from apps.schedules.models import Schedule
from apps.schedules.services import new_schedule_feed, new_user_feed

from .conftest import load_fixture
from .factories import IncidentFactory, ServiceFactory, TeamFactory

pytestmark = pytest.mark.django_db

CALLERS = ("anonymous", "viewer", "responder", "team_admin", "other_team", "org_admin", "key", "key_without_scope")
SESSION_ONLY = {"key": "login", "key_without_scope": "login"}  # keys do not sign anyone in to the portal


def row(anonymous, viewer, responder, team_admin, other_team, org_admin, key=None, key_without_scope=None) -> dict:
    return dict(zip(CALLERS, (anonymous, viewer, responder, team_admin, other_team, org_admin, key, key_without_scope)))


def same(answer) -> dict:
    return dict.fromkeys(CALLERS, answer)


PAGE = row("login", 200, 200, 200, 404, 200, **SESSION_ONLY)  # a page of team A's
LIST = row("login", 200, 200, 200, 200, 200, **SESSION_ONLY)  # every signed-in user's own list
PORTAL_CHANGE = row("login", 403, "ok", "ok", 404, "ok", **SESSION_ONLY)
API_READ = row(401, 200, 200, 200, 404, 200, 200, 403)
API_LIST = row(401, 200, 200, 200, 200, 200, 200, 403)
API_CHANGE = row(401, 403, 200, 200, 404, 200, 200, 403)
CONFIG_READ = row(401, 403, 403, 200, 403, 200, 200, 403)
CONFIG_CHANGE = row(401, 403, 403, "ok", 403, "ok", "ok", 403)


@dataclass
class Entry:
    method: str
    url: callable  # world -> path
    expected: dict
    body: callable = field(default=lambda world: None)  # world -> JSON or form data
    scope: str = ApiKey.Scope.INCIDENTS_READ  # what the key with the scope holds


def incident_url(name, which="incident"):
    return lambda w: reverse(name, args=[w[which].pk])


API = "api"  # incidents' API namespace
MATRIX: dict[str, Entry] = {
    # Health: for load balancers and probes, no credentials.
    "healthz": Entry("get", lambda w: "/healthz", same(200)),
    "readyz": Entry("get", lambda w: "/readyz", same(200)),
    # Senders authenticate with the integration's token, not a person or an API key.
    "ingest": Entry("post", lambda w: "/api/v1/ingest/not-a-token/generic", same(404), lambda w: {"title": "x"}),
    "ingest-bearer": Entry("post", lambda w: "/api/v1/ingest/generic", same(404), lambda w: {"title": "x"}),
    "heartbeat": Entry("post", lambda w: "/api/v1/heartbeat/not-a-token", same(404)),
    "pagerduty-enqueue": Entry("post", lambda w: "/v2/enqueue", same(400), lambda w: {"routing_key": "nope"}),
    "opsgenie-create": Entry("post", lambda w: "/opsgenie/v2/alerts", same(401), lambda w: {"message": "x"}),
    "opsgenie-action": Entry("post", lambda w: "/opsgenie/v2/alerts/abc/close?identifierType=alias", same(401), lambda w: {}),
    # Slack and Twilio sign their requests: an unsigned one changes nothing.
    "slack-events": Entry("post", lambda w: "/integrations/slack/events", same(401), lambda w: {}),
    "slack-link": Entry("get", lambda w: "/integrations/slack/link/not-a-token", row("login", 400, 400, 400, 400, 400, "login", "login")),
    "twilio-gather": Entry("post", lambda w: f"/integrations/twilio/voice/{w['notification'].pk}/gather", same(403), lambda w: {"Digits": "1"}),
    "twilio-status": Entry("post", lambda w: f"/integrations/twilio/status/{w['notification'].pk}", same(403), lambda w: {}),
    # The API: incidents.
    f"{API}:incident-list": Entry("get", lambda w: reverse(f"{API}:incident-list"), API_LIST),
    f"{API}:incident-detail": Entry("get", incident_url(f"{API}:incident-detail"), API_READ),
    f"{API}:incident-acknowledge": Entry("post", incident_url(f"{API}:incident-acknowledge"), API_CHANGE, scope=ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-unacknowledge": Entry("post", incident_url(f"{API}:incident-unacknowledge", "acknowledged"), API_CHANGE, scope=ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-resolve": Entry("post", incident_url(f"{API}:incident-resolve"), API_CHANGE, lambda w: {}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-notes": Entry("post", incident_url(f"{API}:incident-notes"), API_CHANGE, lambda w: {"text": "hello"}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-reassign": Entry("post", incident_url(f"{API}:incident-reassign"), API_CHANGE, lambda w: {"assignee": "responder"}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-merge": Entry("post", incident_url(f"{API}:incident-merge"), API_CHANGE, lambda w: {"into": w["sibling"].pk}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-split": Entry("post", incident_url(f"{API}:incident-split"), row(401, 403, 201, 201, 404, 201, 201, 403), lambda w: {"alert": w["alert"].pk}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:incident-severity": Entry("post", incident_url(f"{API}:incident-severity"), API_CHANGE, lambda w: {"severity": "high"}, ApiKey.Scope.INCIDENTS_WRITE),
    f"{API}:api-root": Entry("get", lambda w: reverse(f"{API}:api-root"), row(401, 200, 200, 200, 200, 200, 200, 200)),
    # The API's description is public, as vendors' are; it holds no data.
    f"{API}:schema": Entry("get", lambda w: reverse(f"{API}:schema"), same(200)),
    f"{API}:docs": Entry("get", lambda w: reverse(f"{API}:docs"), same(200)),
    # The API: an integration's routes (configuration: team admins).
    "integrations-api:route-list": Entry("get", lambda w: f"/api/v1/integrations/{w['integration'].pk}/routes/", CONFIG_READ, scope=ApiKey.Scope.INTEGRATIONS_READ),
    "integrations-api:route-detail": Entry("get", lambda w: f"/api/v1/integrations/{w['integration'].pk}/routes/{w['route'].pk}/", CONFIG_READ, scope=ApiKey.Scope.INTEGRATIONS_READ),
    "integrations-api:route-preview": Entry("post", lambda w: f"/api/v1/integrations/{w['integration'].pk}/routes/preview/", CONFIG_CHANGE, lambda w: load_fixture("alertmanager_webhook_v4_firing.json"), ApiKey.Scope.INTEGRATIONS_WRITE),
    # The portal.
    "portal:home": Entry("get", lambda w: "/", same("ok")),
    "portal:incident-list": Entry("get", lambda w: reverse("portal:incident-list"), LIST),
    "portal:incident-detail": Entry("get", incident_url("portal:incident-detail"), PAGE),
    "portal:incident-acknowledge": Entry("post", incident_url("portal:incident-acknowledge"), PORTAL_CHANGE, lambda w: {}),
    "portal:incident-unacknowledge": Entry("post", incident_url("portal:incident-unacknowledge", "acknowledged"), PORTAL_CHANGE, lambda w: {}),
    "portal:incident-resolve": Entry("post", incident_url("portal:incident-resolve"), PORTAL_CHANGE, lambda w: {}),
    "portal:incident-note": Entry("post", incident_url("portal:incident-note"), PORTAL_CHANGE, lambda w: {"text": "hello"}),
    "portal:incident-merge": Entry("post", incident_url("portal:incident-merge"), PORTAL_CHANGE, lambda w: {"into": str(w["sibling"].number)}),
    "portal:alert-split": Entry("post", lambda w: reverse("portal:alert-split", args=[w["incident"].pk, w["alert"].pk]), PORTAL_CHANGE, lambda w: {}),
    "portal:incident-severity": Entry("post", incident_url("portal:incident-severity"), PORTAL_CHANGE, lambda w: {"severity": "high"}),
    "assist:postmortem": Entry("get", incident_url("assist:postmortem", "resolved"), PAGE),
    "assist:postmortem-draft": Entry("post", incident_url("assist:postmortem-draft", "resolved"), PORTAL_CHANGE, lambda w: {}),
    "assist:postmortem-markdown": Entry("get", incident_url("assist:postmortem-markdown", "resolved"), PAGE),
    "assist:runbook": Entry("get", lambda w: reverse("assist:runbook", args=[w["runbook"].pk]), PAGE),
    "oncall:now": Entry("get", lambda w: reverse("oncall:now"), LIST),
    "oncall:now#new-feed": Entry("post", lambda w: reverse("oncall:now"), LIST, lambda w: {}),
    "oncall:schedule": Entry("get", lambda w: reverse("oncall:schedule", args=[w["schedule"].pk]), PAGE),
    "oncall:schedule#new-feed": Entry("post", lambda w: reverse("oncall:schedule", args=[w["schedule"].pk]),
                                      row("login", 403, 403, "ok", 404, "ok", **SESSION_ONLY), lambda w: {}),
    "escalation:service-paging": Entry("get", lambda w: reverse("escalation:service-paging", args=[w["service"].pk]), PAGE),
    # Calendar apps cannot sign in: the secret in the URL is the credential.
    "oncall:ical-schedule": Entry("get", lambda w: reverse("oncall:ical-schedule", args=[w["schedule_token"]]), same(200)),
    "oncall:ical-user": Entry("get", lambda w: reverse("oncall:ical-user", args=[w["user_token"]]), same(200)),
}


def _parts() -> list:
    """tests/matrix/*.py: each has ENTRIES, and may have extend(world) adding objects its URLs name."""
    import importlib
    import pkgutil

    from . import matrix

    return [importlib.import_module(f"{matrix.__name__}.{m.name}") for m in pkgutil.iter_modules(matrix.__path__)]


PARTS = _parts()
for part in PARTS:
    MATRIX.update(part.ENTRIES)


def named_urls() -> set[str]:
    """Every URL name outside Django's admin and allauth's sign-in pages (their own tests cover them)."""

    def walk(patterns, namespace=""):
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                ns = pattern.namespace or ""
                if ns == "admin" or str(pattern.pattern).startswith("accounts/"):
                    continue
                yield from walk(pattern.url_patterns, f"{namespace}{ns}:" if ns else namespace)
            elif pattern.name:
                yield namespace + pattern.name
            else:
                raise AssertionError(f"URL {pattern.pattern} has no name: the matrix cannot name it")

    return set(walk(get_resolver().url_patterns))


def test_every_url_has_an_entry():
    names = {name.partition("#")[0] for name in MATRIX}  # "name#what": another method of the same URL
    assert named_urls() - names == set(), "add these URLs to MATRIX with who may call them"
    assert names - named_urls() == set(), "these MATRIX entries name no URL any more"


@pytest.fixture
def world():
    team, other = TeamFactory(slug="team-a"), TeamFactory(slug="team-b")
    users = {}
    for name, team_of, role in (("viewer", team, "viewer"), ("responder", team, "responder"), ("team_admin", team, "admin"),
                                ("other_team", other, "responder")):
        users[name] = get_user_model().objects.create_user(username=name, password="pw")
        Membership.objects.create(user=users[name], team=team_of, role=role)
    users["org_admin"] = get_user_model().objects.create_superuser(username="org_admin", password="pw")
    service = ServiceFactory(team=team, slug="a")
    incident = IncidentFactory(service=service, severity="critical")
    Alert.objects.create(incident=incident, dedup_key="k1", status="firing", title="one", payload={}, received_at=timezone.now())
    alert = Alert.objects.create(incident=incident, dedup_key="k2", status="firing", title="two", payload={}, received_at=timezone.now())
    resolved = IncidentFactory(service=service, severity="critical", status="resolved")
    Postmortem.objects.create(incident=resolved, summary="what happened")
    integration, _ = create_integration(name="am", kind="alertmanager", service=service)
    schedule = Schedule.objects.create(name="primary", team=team, time_zone="UTC")
    schedule_token = new_schedule_feed(schedule, actor=SYSTEM)
    keys = {}
    for name, scopes in (("key", None), ("key_without_scope", [ApiKey.Scope.INTEGRATIONS_READ])):
        keys[name] = scopes
    world = {
        "users": users, "service": service, "incident": incident, "alert": alert, "resolved": resolved,
        "sibling": IncidentFactory(service=service), "acknowledged": IncidentFactory(service=service, status="acknowledged"),
        "integration": integration, "route": Route.objects.create(integration=integration, position=0, name="a",
                                                                 matchers=['service="a"'], service=service),
        "runbook": Runbook.objects.create(title="restart it", body="…", service=service),
        "schedule": schedule, "schedule_token": schedule_token, "user_token": new_user_feed(users["viewer"]),
        "team": team,
    }
    from apps.notifications.models import Notification

    world["notification"] = Notification.objects.create(incident=incident, recipient=users["responder"], channel="voice",
                                                        idempotency_key="matrix")
    for part in PARTS:
        if hasattr(part, "extend"):
            part.extend(world)
    return world


def answer(world, entry: Entry, caller: str):
    client = Client()
    headers = {}
    if caller in world["users"]:
        client.force_login(world["users"][caller])
    elif caller.startswith("key"):
        scopes = [entry.scope] if caller == "key" else [s for s in ApiKey.Scope.values if s != entry.scope][:1]
        if caller == "key_without_scope" and entry.scope != ApiKey.Scope.INCIDENTS_READ:
            scopes = [ApiKey.Scope.INCIDENTS_READ]
        _, token = create_api_key(name=caller, scopes=scopes, created_by=world["users"]["team_admin"], team=world["team"])
        headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    body = entry.body(world)
    if entry.method == "get":
        return client.get(entry.url(world), **headers)
    if entry.url(world).startswith("/api/") or entry.url(world).startswith(("/v2/", "/opsgenie/")):
        return client.post(entry.url(world), body or {}, content_type="application/json", **headers)
    return client.post(entry.url(world), body or {}, **headers)


def verdict(response) -> str | int:
    if response.status_code in (301, 302, 303):
        return "login" if "/accounts/login/" in response["Location"] else "ok"
    if 200 <= response.status_code < 300:
        return "ok"
    return response.status_code


def matches(got, expected) -> bool:
    if expected == "ok":
        return got == "ok"
    if isinstance(expected, int) and 200 <= expected < 300:
        return got == "ok"
    return got == expected


def test_every_url_answers_every_caller_as_the_matrix_says(world):
    wrong = []
    for name, entry in MATRIX.items():
        for caller in CALLERS:
            with transaction.atomic():
                response = answer(world, entry, caller)
                got = verdict(response)
                transaction.set_rollback(True)
            if not matches(got, entry.expected[caller]):
                wrong.append(f"{name} as {caller}: {got}, expected {entry.expected[caller]}")
    assert not wrong, "\n".join(wrong)
