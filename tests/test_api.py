import json
from datetime import timedelta

import pytest
import yaml
from django.test import Client
from django.utils import timezone
from drf_spectacular.validation import validate_schema

from apps.accounts.models import ApiKey, Membership
from apps.accounts.services import create_api_key, revoke_api_key
from apps.audit.models import AuditEntry
from apps.audit.services import Actor
from apps.incidents import services
from apps.incidents.models import Alert, Incident

from .conftest import load_fixture
from .factories import IncidentFactory, MembershipFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

READ, WRITE = ApiKey.Scope.INCIDENTS_READ, ApiKey.Scope.INCIDENTS_WRITE
INCIDENTS = "/api/v1/incidents/"


def bearer(*scopes, name="bot", **kwargs) -> dict:
    _, key = create_api_key(name=name, scopes=scopes or [READ, WRITE], **kwargs)
    return {"Authorization": f"Bearer {key}"}


def post(client, path, body=None, **kwargs):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body or {})
    return client.post(path, data=data, content_type="application/json", **kwargs)


def action(incident, verb):
    return f"{INCIDENTS}{incident.pk}/{verb}/"


# Reading


def test_list_is_newest_first_filtered_and_paginated(client, service):
    other = ServiceFactory(slug="search")
    old = IncidentFactory(service=service, severity="critical")
    acked = IncidentFactory(service=service, severity="high", status="acknowledged")
    elsewhere = IncidentFactory(service=other, severity="critical", status="resolved")
    headers = bearer(READ)

    def numbers(query=""):
        response = client.get(INCIDENTS + query, headers=headers)
        assert response.status_code == 200, response.content
        return [i["number"] for i in response.json()["results"]]

    assert numbers() == [elsewhere.number, acked.number, old.number]
    assert numbers("?status=acknowledged") == [acked.number]
    assert numbers("?status=triggered&status=acknowledged") == [acked.number, old.number]
    assert numbers("?severity=critical") == [elsewhere.number, old.number]
    assert numbers("?service=checkout") == [acked.number, old.number]
    assert numbers("?service=checkout&severity=critical") == [old.number]
    assert numbers("?service=nope") == []

    first = client.get(INCIDENTS + "?page_size=2", headers=headers).json()
    assert first["count"] == 3 and len(first["results"]) == 2 and first["next"].endswith("page=2&page_size=2")
    row = first["results"][0]
    assert row["service"] == "search" and row["status"] == "resolved"
    assert row["url"] == f"http://testserver{INCIDENTS}{elsewhere.pk}/"
    assert set(row) == {
        "id", "number", "title", "status", "severity", "severity_source", "service", "alert_count", "first_alert_at",
        "last_alert_at", "acknowledged_at", "acknowledged_by", "resolved_at", "resolved_by", "assignee", "url",
        "category", "classified_severity", "confidence", "rationale", "classified_by", "model", "environment",
    }


def test_list_default_page_size_and_constant_queries(client, service, django_assert_max_num_queries):
    someone = UserFactory()
    IncidentFactory.create_batch(51, service=service, assignee=someone, acknowledged_by=someone)
    headers = bearer(READ)
    with django_assert_max_num_queries(3):  # key, count, page (users and services joined)
        page = client.get(INCIDENTS, headers=headers).json()
    assert page["count"] == 51 and len(page["results"]) == 50
    assert page["results"][0]["assignee"] == someone.username


def test_bad_filter_is_400_naming_the_parameter(client, service):
    response = client.get(INCIDENTS + "?status=sleeping", headers=bearer(READ))
    assert response.status_code == 400
    assert response.json()["field"] == "status"
    assert "sleeping" in response.json()["error"]


def test_detail_has_latest_alerts_and_the_timeline(client, ingest_path):
    path = ingest_path("alertmanager")
    for _ in range(2):
        post(client, path, load_fixture("alertmanager_webhook_v4_firing.json"))
    incident = Incident.objects.get(dedup_key="f42295278b9c7421")
    services.add_note(incident, text="Looking at web-01", actor=Actor("sam"))

    response = client.get(f"{INCIDENTS}{incident.pk}/", headers=bearer(READ))

    assert response.status_code == 200
    body = response.json()
    assert body["number"] == incident.number and body["alert_count"] == 2
    assert body["labels"] == incident.labels and body["description"] == incident.description
    assert [a["deduplicated"] for a in body["alerts"]] == [True, False]  # newest first
    assert body["alerts"][0]["payload"]["fingerprint"] == "f42295278b9c7421"
    assert [(e["verb"], e["actor"]) for e in body["timeline"]] == [
        ("incident.triggered", "integration:alertmanager test"),
        ("incident.note_added", "sam"),
    ]
    assert body["timeline"][1]["data"] == {"text": "Looking at web-01"}


def test_detail_shows_only_the_latest_100_alerts(client, service):
    incident = IncidentFactory(service=service)
    start = timezone.now()
    Alert.objects.bulk_create(
        Alert(incident=incident, source="test", status="firing", title=f"a{i}", severity="low",
              dedup_key="k", fingerprint="f", payload={"i": i}, received_at=start + timedelta(seconds=i))
        for i in range(101)
    )
    alerts = client.get(f"{INCIDENTS}{incident.pk}/", headers=bearer(READ)).json()["alerts"]
    assert len(alerts) == 100
    assert (alerts[0]["title"], alerts[-1]["title"]) == ("a100", "a1")


@pytest.mark.parametrize("pk", ["999999", "abc", "99999999999999999999999"])
def test_unknown_incident_is_404(client, pk):
    response = client.get(f"{INCIDENTS}{pk}/", headers=bearer(READ))
    assert response.status_code == 404
    assert "error" in response.json()


# Changing, with an API key


def test_acknowledge_note_reassign_resolve_with_a_write_key(client, service):
    creator = MembershipFactory(user=UserFactory(username="ops-lead"), team=service.team).user
    rita = MembershipFactory(user=UserFactory(username="rita"), team=service.team).user
    incident = IncidentFactory(service=service)
    headers = bearer(READ, WRITE, name="pager-bot", created_by=creator)

    acked = post(client, action(incident, "acknowledge"), headers=headers)
    assert acked.status_code == 200, acked.content
    assert acked.json()["status"] == "acknowledged" and acked.json()["acknowledged_by"] == "ops-lead"

    noted = post(client, action(incident, "notes"), {"text": "  Rolled back 1.4.2  "}, headers=headers)
    assert noted.status_code == 200
    assert noted.json()["timeline"][-1]["data"] == {"text": "Rolled back 1.4.2"}

    reassigned = post(client, action(incident, "reassign"), {"assignee": "rita"}, headers=headers)
    assert reassigned.status_code == 200 and reassigned.json()["assignee"] == "rita"

    resolved = post(client, action(incident, "resolve"), {"reason": "rollback"}, headers=headers)
    assert resolved.status_code == 200
    body = resolved.json()
    assert (body["status"], body["resolved_by"]) == ("resolved", "ops-lead")
    assert [e["verb"] for e in body["timeline"]] == [
        "incident.acknowledged", "incident.note_added", "incident.reassigned", "incident.resolved",
    ]

    entries = AuditEntry.objects.filter(incident=incident).order_by("id")
    assert {(e.actor_label, e.actor_id) for e in entries} == {("apikey:pager-bot", creator.pk)}
    assert entries.get(verb="incident.reassigned").data == {"from": None, "to": "rita"}
    assert entries.get(verb="incident.resolved").data == {"reason": "rollback"}
    incident.refresh_from_db()
    assert (incident.status, incident.assignee, incident.acknowledged_by) == ("resolved", rita, creator)


def test_a_key_without_a_creator_acts_as_itself(client, service):
    incident = IncidentFactory(service=service)
    response = post(client, action(incident, "acknowledge"), headers=bearer(WRITE, name="ci"))
    assert response.status_code == 200 and response.json()["acknowledged_by"] is None
    entry = AuditEntry.objects.get(verb="incident.acknowledged")
    assert (entry.actor_label, entry.actor_id) == ("apikey:ci", None)


def test_scopes_are_enforced(client, service):
    incident = IncidentFactory(service=service)
    read_only = bearer(READ)
    assert client.get(INCIDENTS, headers=read_only).status_code == 200
    assert client.get(f"{INCIDENTS}{incident.pk}/", headers=read_only).status_code == 200
    denied = post(client, action(incident, "acknowledge"), headers=read_only)
    assert denied.status_code == 403
    assert denied.json() == {"error": "This API key lacks the incidents:write scope."}

    write_only = bearer(WRITE)
    assert client.get(INCIDENTS, headers=write_only).json() == {"error": "This API key lacks the incidents:read scope."}
    assert not AuditEntry.objects.filter(incident=incident).exists()
    assert Incident.objects.get().status == "triggered"


@pytest.mark.parametrize(
    "authorization, message",
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer imk_not-a-real-key", "Invalid API key."),
        ("Bearer", "Malformed Authorization header; expected 'Bearer <api key>'."),
        ("Bearer two words", "Malformed Authorization header; expected 'Bearer <api key>'."),
    ],
)
def test_missing_or_invalid_key_is_401(client, service, authorization, message):
    headers = {"Authorization": authorization} if authorization else {}
    response = client.get(INCIDENTS, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": message}
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_and_deactivated_creator_are_401(client, service):
    key, plaintext = create_api_key(name="old", scopes=[READ])
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert client.get(INCIDENTS, headers=headers).status_code == 200
    revoke_api_key(key)
    response = client.get(INCIDENTS, headers=headers)
    assert response.status_code == 401 and "revoked" in response.json()["error"]
    assert AuditEntry.objects.filter(verb="apikey.revoked").count() == 1

    leaver = MembershipFactory(team=service.team).user
    headers = bearer(READ, created_by=leaver)
    leaver.is_active = False
    leaver.save()
    response = client.get(INCIDENTS, headers=headers)
    assert response.status_code == 401 and "deactivated" in response.json()["error"]


def test_invalid_transitions_are_409(client, service):
    incident = IncidentFactory(service=service, status="resolved")
    headers = bearer(READ, WRITE)
    UserFactory(username="rita")
    for verb, body in [("acknowledge", None), ("resolve", None), ("reassign", {"assignee": "rita"})]:
        response = post(client, action(incident, verb), body, headers=headers)
        assert response.status_code == 409, verb
        assert f"#{incident.number}" in response.json()["error"]
    assert response.json() == {"error": f"Incident #{incident.number} is resolved; reopen it before reassigning."}


@pytest.mark.parametrize(
    "verb, body, field",
    [
        ("notes", {"text": ""}, "text"),
        ("notes", {"text": "   "}, "text"),
        ("notes", {}, "text"),
        ("notes", {"text": None}, "text"),
        ("notes", {"text": {"nested": 1}}, "text"),
        ("notes", {"text": "nul \u0000 char"}, "text"),
        ("notes", {"text": "x" * 10_001}, "text"),
        ("notes", "[1, 2]", "body"),
        ("notes", "{not json", "body"),
        ("notes", '{"text": NaN}', "body"),
        ("reassign", {}, "assignee"),
        ("reassign", {"assignee": "nobody"}, "assignee"),
        ("reassign", {"assignee": "gone"}, "assignee"),
        ("reassign", {"assignee": "nul\u0000"}, "assignee"),
        ("reassign", {"assignee": ["rita"]}, "assignee"),
        ("resolve", {"reason": 5 * "long reason "}, None),  # accepted
        ("resolve", {"reason": "x" * 1001}, "reason"),
    ],
)
def test_bad_bodies_are_400_naming_the_field(client, service, verb, body, field):
    UserFactory(username="gone", is_active=False)
    incident = IncidentFactory(service=service)
    response = post(client, action(incident, verb), body, headers=bearer(READ, WRITE))
    if field is None:
        assert response.status_code == 200
        return
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert not AuditEntry.objects.filter(incident=incident).exists()


def test_empty_note_message_comes_from_the_service(client, service):
    incident = IncidentFactory(service=service)
    response = post(client, action(incident, "notes"), {"text": " "}, headers=bearer(WRITE))
    assert response.json() == {"error": "A note needs some text.", "field": "text"}


# Session authentication (the portal)


def test_session_viewer_reads_but_cannot_change(client, service):
    viewer = MembershipFactory(team=service.team, role=Membership.Role.VIEWER).user
    incident = IncidentFactory(service=service)
    client.force_login(viewer)
    assert client.get(INCIDENTS).status_code == 200
    response = post(client, action(incident, "acknowledge"))
    assert response.status_code == 403
    assert "responder" in response.json()["error"]


def test_session_responder_changes_under_their_own_name(client, service, responder):
    incident = IncidentFactory(service=service)
    client.force_login(responder)
    response = post(client, action(incident, "acknowledge"))
    assert response.status_code == 200 and response.json()["acknowledged_by"] == responder.username
    entry = AuditEntry.objects.get(verb="incident.acknowledged")
    assert (entry.actor_label, entry.actor_id) == (responder.username, responder.pk)


def test_session_writes_need_the_csrf_token_but_keys_do_not(service, responder):
    incident = IncidentFactory(service=service)
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(responder)
    response = post(browser, action(incident, "acknowledge"))
    assert response.status_code == 403 and "CSRF" in response.json()["error"]

    machine = Client(enforce_csrf_checks=True)
    assert post(machine, action(incident, "acknowledge"), headers=bearer(WRITE)).status_code == 200


def test_inactive_session_user_cannot_read(client, service):
    user = UserFactory()
    client.force_login(user)
    user.is_active = False
    user.save()
    assert client.get(INCIDENTS).status_code in (401, 403)


# Schema and docs


def test_openapi_schema_is_valid_and_describes_the_api(client):
    response = client.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    validate_schema(schema)
    assert json.loads(client.get("/api/schema/?format=json").content) == schema

    paths = schema["paths"]
    assert {
        "/api/v1/incidents/", "/api/v1/incidents/{id}/", "/api/v1/incidents/{id}/acknowledge/",
        "/api/v1/incidents/{id}/resolve/", "/api/v1/incidents/{id}/notes/", "/api/v1/incidents/{id}/reassign/",
    } <= set(paths)
    assert schema["components"]["securitySchemes"]["apiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key from `manage.py createapikey`.",
    }
    list_op = paths["/api/v1/incidents/"]["get"]
    assert {p["name"] for p in list_op["parameters"]} >= {"status", "severity", "service", "page", "page_size"}
    assert {"apiKey": []} in list_op["security"]
    notes_body = paths["/api/v1/incidents/{id}/notes/"]["post"]["requestBody"]["content"]["application/json"]
    assert notes_body["schema"] == {"$ref": "#/components/schemas/Note"}
    assert {"IncidentStatusEnum", "AlertStatusEnum"} <= set(schema["components"]["schemas"])


def test_docs_page_works_offline(client):
    response = client.get("/api/docs/", HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    html = response.content.decode()
    assert "/api/v1/incidents/{id}/acknowledge/" in html
    # Every script and stylesheet comes from this site (DRF's static files), none from a CDN.
    assert "cdn." not in html and 'src="http' not in html and 'href="https://cdn' not in html
