"""The configuration API of services (grouping rules, dependencies), maintenance windows,
integrations and runbooks (issue 17): what a config-as-code tool or a person sees."""

import json
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts.models import ApiKey, Membership
from apps.accounts.services import create_api_key
from apps.assist.models import Runbook
from apps.audit.models import AuditEntry
from apps.incidents.models import GroupingRule, Incident, MaintenanceWindow, Service
from apps.integrations.models import Integration

from .conftest import load_fixture
from .factories import IncidentFactory, ServiceFactory, TeamFactory

pytestmark = pytest.mark.django_db

S = ApiKey.Scope
SERVICES, WINDOWS, INTEGRATIONS, RUNBOOKS = "/api/v1/services/", "/api/v1/maintenance-windows/", "/api/v1/integrations/", "/api/v1/runbooks/"


@pytest.fixture
def teams():
    team, other = TeamFactory(slug="payments"), TeamFactory(slug="search")
    people = {}
    for name, of, role in (("admin", team, "admin"), ("viewer", team, "viewer"), ("stranger", other, "admin")):
        people[name] = get_user_model().objects.create_user(username=name, password="pw")
        Membership.objects.create(user=people[name], team=of, role=role)
    people["root"] = get_user_model().objects.create_superuser(username="root", password="pw")
    return {"team": team, "other": other, **people}


def key(user, *scopes, team=None) -> dict:
    _, token = create_api_key(name="tool", scopes=list(scopes), created_by=user, team=team)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def send(client, method, path, body=None, **headers):
    return getattr(client, method)(path, data=json.dumps(body or {}), content_type="application/json", **headers)


def error(response) -> tuple[int, str]:
    return response.status_code, response.json().get("field")


# Services


def test_service_crud_with_rules_and_dependencies_by_a_team_admins_key(client, teams):
    db = ServiceFactory(team=teams["team"], slug="db")
    auth = key(teams["admin"], S.SERVICES_READ, S.SERVICES_WRITE, team=teams["team"])
    created = send(client, "post", SERVICES, {
        "name": "Checkout", "slug": "checkout", "team": "payments", "external_id": "tf:checkout",
        "auto_resolve_minutes": 60, "similarity_threshold": 0.9, "identifying_labels": ["cluster"],
        "correlation_minutes": 10, "depends_on": ["db"],
        "grouping_rules": [{"name": "by alert", "group_by": ["alertname"], "window_minutes": 15}],
    }, **auth)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["depends_on"] == ["db"] and body["team"] == "payments" and body["external_id"] == "tf:checkout"
    assert [r["group_by"] for r in body["grouping_rules"]] == [["alertname"]]
    service = Service.objects.get(slug="checkout")
    assert list(service.depends_on.all()) == [db] and service.grouping_rules.get().window_minutes == 15

    found = client.get(SERVICES + "?external_id=tf:checkout", **auth).json()
    assert found["count"] == 1 and found["results"][0]["id"] == service.pk

    changed = send(client, "patch", f"{SERVICES}{service.pk}/", {
        "is_active": False, "depends_on": [],
        "grouping_rules": [{"name": "a", "group_by": ["cluster"]}, {"name": "b", "group_by": ["env"], "position": 1}],
    }, **auth)
    assert changed.status_code == 200, changed.content
    assert [r["name"] for r in changed.json()["grouping_rules"]] == ["a", "b"]
    service.refresh_from_db()
    assert not service.is_active and not service.depends_on.exists() and GroupingRule.objects.filter(service=service).count() == 2

    assert client.delete(f"{SERVICES}{service.pk}/", **auth).status_code == 204
    assert not Service.objects.filter(slug="checkout").exists()
    verbs = list(AuditEntry.objects.filter(verb__startswith="service.").values_list("verb", flat=True))
    assert verbs == ["service.created", "service.changed", "service.deleted"]
    first = AuditEntry.objects.get(verb="service.created")
    assert first.data["external_id"] == "tf:checkout" and "grouping_rules" in first.data["fields"]
    assert first.actor_label  # who


def test_a_session_team_admin_writes_and_a_viewer_only_reads(client, teams):
    service = ServiceFactory(team=teams["team"], slug="checkout")
    client.force_login(teams["viewer"])
    assert client.get(f"{SERVICES}{service.pk}/").json()["slug"] == "checkout"
    assert send(client, "patch", f"{SERVICES}{service.pk}/", {"name": "x"}).status_code == 403
    assert send(client, "post", SERVICES, {"name": "n", "slug": "n", "team": "payments"}).status_code == 403
    assert client.delete(f"{SERVICES}{service.pk}/").status_code == 403

    client.force_login(teams["admin"])
    assert send(client, "patch", f"{SERVICES}{service.pk}/", {"name": "Till"}).json()["name"] == "Till"
    assert send(client, "post", SERVICES, {"name": "New", "slug": "new", "team": "payments"}).status_code == 201


def test_another_teams_service_is_not_found_and_cannot_be_written_into(client, teams):
    theirs = ServiceFactory(team=teams["other"], slug="theirs")
    auth = key(teams["admin"], S.SERVICES_READ, S.SERVICES_WRITE, team=teams["team"])
    assert client.get(f"{SERVICES}{theirs.pk}/", **auth).status_code == 404
    assert send(client, "patch", f"{SERVICES}{theirs.pk}/", {"name": "x"}, **auth).status_code == 404
    assert client.get(SERVICES, **auth).json()["count"] == 0
    refused = send(client, "post", SERVICES, {"name": "n", "slug": "n", "team": "search"}, **auth)
    assert error(refused) == (400, "team") and not Service.objects.filter(slug="n").exists()
    # Their services are not dependencies one can name.
    assert error(send(client, "post", SERVICES, {"name": "n", "slug": "n", "team": "payments", "depends_on": ["theirs"]}, **auth)) == (400, "depends_on")


def test_a_key_without_the_scope_is_refused(client, teams):
    service = ServiceFactory(team=teams["team"])
    read_only = key(teams["admin"], S.SERVICES_READ, team=teams["team"])
    assert client.get(f"{SERVICES}{service.pk}/", **read_only).status_code == 200
    refused = send(client, "patch", f"{SERVICES}{service.pk}/", {"name": "x"}, **read_only)
    assert refused.status_code == 403 and "services:write" in refused.json()["error"]
    assert client.get(SERVICES, **key(teams["admin"], S.INCIDENTS_READ)).status_code == 403


@pytest.mark.parametrize("body, field", [
    ({"identifying_labels": "cluster"}, "identifying_labels"),
    ({"grouping_rules": [{"name": "ok", "group_by": ["a"]}, {"name": "bad", "group_by": []}]}, "grouping_rules.1.group_by"),
    ({"grouping_rules": [{"name": "bad", "group_by": ["a"], "window_minutes": -1}]}, "grouping_rules.0.window_minutes"),
    ({"slug": "not a slug"}, "slug"),
    ({"slug": "taken"}, "slug"),
    ({"external_id": "used"}, "external_id"),
    ({"depends_on": ["nope"]}, "depends_on"),
    ({"auto_resolve_minutes": -5}, "auto_resolve_minutes"),
    ({"team": "no-such-team"}, "team"),
], ids=lambda v: v if isinstance(v, str) else None)
def test_bad_service_input_is_a_400_naming_the_field(client, teams, body, field):
    ServiceFactory(team=teams["team"], slug="taken", external_id="used")
    auth = key(teams["admin"], S.SERVICES_WRITE, team=teams["team"])
    response = send(client, "post", SERVICES, {"name": "n", "slug": "fresh", "team": "payments", **body}, **auth)
    assert error(response) == (400, field), response.content
    assert not Service.objects.filter(name="n").exists()


def test_a_service_cannot_depend_on_itself_nor_be_deleted_with_incidents(client, teams):
    service = ServiceFactory(team=teams["team"], slug="checkout")
    IncidentFactory(service=service)
    client.force_login(teams["admin"])
    assert error(send(client, "patch", f"{SERVICES}{service.pk}/", {"depends_on": ["checkout"]})) == (400, "depends_on")
    kept = client.delete(f"{SERVICES}{service.pk}/")
    assert kept.status_code == 409 and Incident.objects.filter(service=service).exists()
    assert not AuditEntry.objects.filter(verb="service.deleted").exists()


# Maintenance windows


def test_maintenance_window_crud_and_the_teamless_ones(client, teams):
    ServiceFactory(team=teams["team"], slug="checkout")
    now = timezone.now()
    auth = key(teams["admin"], S.SERVICES_READ, S.SERVICES_WRITE, team=teams["team"])
    window = {"service": "checkout", "matchers": {"env": "staging"}, "starts_at": now.isoformat(),
              "ends_at": (now + timedelta(hours=1)).isoformat(), "reason": "upgrade", "external_id": "mw-1"}
    created = send(client, "post", WINDOWS, window, **auth)
    assert created.status_code == 201, created.content
    assert created.json()["created_by"] == "admin"
    pk = created.json()["id"]
    assert client.get(WINDOWS + "?external_id=mw-1", **auth).json()["results"][0]["id"] == pk
    assert error(send(client, "patch", f"{WINDOWS}{pk}/", {"ends_at": (now - timedelta(hours=1)).isoformat()}, **auth)) == (400, "ends_at")
    assert error(send(client, "patch", f"{WINDOWS}{pk}/", {"matchers": ["env"]}, **auth)) == (400, "matchers")
    # Silencing every service is an organisation admin's call.
    assert error(send(client, "post", WINDOWS, {**window, "service": None, "external_id": None}, **auth)) == (400, "service")
    everywhere = MaintenanceWindow.objects.create(starts_at=now, ends_at=now + timedelta(hours=1), reason="all")
    assert client.get(f"{WINDOWS}{everywhere.pk}/", **auth).status_code == 200  # everyone's to read
    assert send(client, "patch", f"{WINDOWS}{everywhere.pk}/", {"reason": "x"}, **auth).status_code == 403
    client.force_login(teams["root"])
    assert send(client, "patch", f"{WINDOWS}{everywhere.pk}/", {"reason": "longer"}).status_code == 200
    assert client.delete(f"{WINDOWS}{pk}/", **auth).status_code == 204
    assert list(AuditEntry.objects.filter(verb__startswith="maintenance_window.").values_list("verb", flat=True)) == [
        "maintenance_window.created", "maintenance_window.changed", "maintenance_window.deleted"]


# Integrations


def test_an_integration_created_over_the_api_ingests_at_the_url_it_answers_once(client, teams):
    ServiceFactory(team=teams["team"], slug="checkout")
    auth = key(teams["admin"], S.INTEGRATIONS_READ, S.INTEGRATIONS_WRITE, team=teams["team"])
    created = send(client, "post", INTEGRATIONS, {"name": "prometheus", "kind": "alertmanager", "service": "checkout",
                                                 "external_id": "am-prod"}, **auth)
    assert created.status_code == 201, created.content
    body = created.json()
    token, url = body["token"], body["ingestion_url"]
    assert token in url and body["token_prefix"] == token[:8] and body["signing_secret"] is None
    integration = Integration.objects.get(external_id="am-prod")
    assert token not in integration.token_hash  # only the digest is kept

    sent = client.post(urlsplit(url).path, data=json.dumps(load_fixture("alertmanager_webhook_v4_firing.json")),
                       content_type="application/json")
    assert sent.status_code in (200, 202), sent.content
    assert Incident.objects.filter(service__slug="checkout").exists()

    for shown in (client.get(f"{INTEGRATIONS}{integration.pk}/", **auth), client.get(INTEGRATIONS + "?external_id=am-prod", **auth)):
        assert shown.status_code == 200 and token not in shown.content.decode()
    assert "token" not in client.get(f"{INTEGRATIONS}{integration.pk}/", **auth).json()
    changed = send(client, "patch", f"{INTEGRATIONS}{integration.pk}/", {"name": "prom", "is_active": False}, **auth)
    assert changed.status_code == 200 and token not in changed.content.decode()
    assert AuditEntry.objects.filter(verb="integration.created", data__external_id="am-prod").exists()
    assert token not in json.dumps(list(AuditEntry.objects.values_list("data", flat=True)))

    assert client.delete(f"{INTEGRATIONS}{integration.pk}/", **auth).status_code == 204
    assert AuditEntry.objects.filter(verb="integration.deleted").exists()


def test_a_signing_secret_is_shown_once_and_then_required(client, teams):
    ServiceFactory(team=teams["team"], slug="checkout")
    client.force_login(teams["admin"])
    created = send(client, "post", INTEGRATIONS, {"name": "grafana", "kind": "grafana", "service": "checkout",
                                                 "signing_secret": "s3cret"}).json()
    assert created["signing_secret"] == "s3cret" and created["has_signing_secret"] is True
    integration = Integration.objects.get(pk=created["id"])
    assert integration.signing_secret and "s3cret" not in integration.signing_secret  # sealed
    shown = client.get(f"{INTEGRATIONS}{integration.pk}/")
    assert "s3cret" not in shown.content.decode() and shown.json()["has_signing_secret"] is True
    assert "s3cret" not in json.dumps(list(AuditEntry.objects.values_list("data", flat=True)))
    cleared = send(client, "patch", f"{INTEGRATIONS}{integration.pk}/", {"signing_secret": ""})
    assert cleared.json()["has_signing_secret"] is False


def test_integration_access_and_validation(client, teams):
    ours = ServiceFactory(team=teams["team"], slug="checkout")
    ServiceFactory(team=teams["other"], slug="theirs")
    integration = Integration.objects.create(name="x", kind="generic", service=ours, token_hash="h", token_prefix="p")
    client.force_login(teams["viewer"])
    assert client.get(f"{INTEGRATIONS}{integration.pk}/").status_code == 200
    assert send(client, "patch", f"{INTEGRATIONS}{integration.pk}/", {"name": "y"}).status_code == 403
    client.force_login(teams["stranger"])
    assert client.get(f"{INTEGRATIONS}{integration.pk}/").status_code == 404
    client.force_login(teams["admin"])
    assert error(send(client, "post", INTEGRATIONS, {"name": "h", "kind": "heartbeat", "service": "checkout"})) == (400, "heartbeat_minutes")
    assert error(send(client, "post", INTEGRATIONS, {"name": "t", "kind": "alertmanager", "service": "checkout",
                                                   "templates": {"title": "{{ x }}"}})) == (400, "templates")
    assert error(send(client, "post", INTEGRATIONS, {"name": "t", "kind": "alertmanager", "service": "theirs"})) == (400, "service")
    assert error(send(client, "patch", f"{INTEGRATIONS}{integration.pk}/", {"kind": "grafana"})) == (400, "kind")
    heartbeat = send(client, "post", INTEGRATIONS, {"name": "cron", "kind": "heartbeat", "service": "checkout", "heartbeat_minutes": 5})
    assert heartbeat.status_code == 201 and "/heartbeat/" in heartbeat.json()["ingestion_url"]
    # The routes API is unchanged beside it.
    assert client.get(f"{INTEGRATIONS}{integration.pk}/routes/").status_code == 200


# Runbooks


def test_runbook_crud_and_runbooks_of_every_service(client, teams):
    ServiceFactory(team=teams["team"], slug="checkout")
    theirs = Runbook.objects.create(title="theirs", body="…", service=ServiceFactory(team=teams["other"]))
    shared = Runbook.objects.create(title="everyone's", body="restart")
    auth = key(teams["admin"], S.RUNBOOKS_READ, S.RUNBOOKS_WRITE, team=teams["team"])
    created = send(client, "post", RUNBOOKS, {"title": "OOM", "body": "# Restart\n", "tags": ["gpu", "oom"],
                                             "service": "checkout", "external_id": "rb-1"}, **auth)
    assert created.status_code == 201, created.content
    pk = created.json()["id"]
    assert Runbook.objects.get(pk=pk).tags == ["gpu", "oom"]
    listed = client.get(RUNBOOKS, **auth).json()
    assert sorted(r["title"] for r in listed["results"]) == ["OOM", "everyone's"]
    assert client.get(RUNBOOKS + "?external_id=rb-1", **auth).json()["results"][0]["id"] == pk
    assert client.get(f"{RUNBOOKS}{theirs.pk}/", **auth).status_code == 404
    assert send(client, "patch", f"{RUNBOOKS}{pk}/", {"title": "OOM kill"}, **auth).json()["title"] == "OOM kill"
    assert error(send(client, "patch", f"{RUNBOOKS}{pk}/", {"title": ""}, **auth)) == (400, "title")
    assert error(send(client, "patch", f"{RUNBOOKS}{pk}/", {"tags": ["x" * 51]}, **auth)) == (400, "tags.0")

    # A runbook of every service: read by all, written by organisation admins only.
    assert client.get(f"{RUNBOOKS}{shared.pk}/", **auth).status_code == 200
    assert send(client, "patch", f"{RUNBOOKS}{shared.pk}/", {"body": "no"}, **auth).status_code == 403
    assert error(send(client, "post", RUNBOOKS, {"title": "all", "body": "b"}, **auth)) == (400, "service")
    client.force_login(teams["root"])
    assert send(client, "post", RUNBOOKS, {"title": "all", "body": "b"}).status_code == 201
    client.force_login(teams["viewer"])
    assert client.get(f"{RUNBOOKS}{shared.pk}/").status_code == 200
    assert send(client, "patch", f"{RUNBOOKS}{pk}/", {"title": "x"}).status_code == 403

    assert client.delete(f"{RUNBOOKS}{pk}/", **auth).status_code == 204
    assert list(AuditEntry.objects.filter(verb__startswith="runbook.").values_list("verb", flat=True)) == [
        "runbook.created", "runbook.changed", "runbook.created", "runbook.deleted"]


def test_the_schema_lists_the_configuration_resources(client):
    paths = client.get("/api/schema/?format=json").json()["paths"]
    for path in (SERVICES, WINDOWS, INTEGRATIONS, RUNBOOKS):
        assert path in paths and f"{path}{{id}}/" in paths
        assert all(op.get("summary") for op in paths[path].values())
