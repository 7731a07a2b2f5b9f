"""What a careless or hostile client sends is a 4xx naming the field, or is kept with a
note, and never a 500 nor an incident that can no longer be read (issue 15)."""

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.urls import reverse

from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.incidents.models import Alert, Incident
from apps.integrations import templating
from apps.integrations.models import Route
from apps.integrations.parsers import PayloadError, alertmanager, generic, pagerduty
from apps.integrations.services import create_integration, ingestion_url
from incident_manager.input_limits import MAX_DEPTH

from .conftest import load_fixture
from .factories import IncidentFactory

pytestmark = pytest.mark.django_db

FAR_FUTURE = "9999-12-31T23:59:59-14:00"  # year 10000 in UTC, which Python cannot read


def post(client, path, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", **extra)


def nested(depth: int):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def api(db):
    scopes = ["incidents:read", "incidents:write", "integrations:read", "integrations:write"]
    _, token = create_api_key(name="limits", scopes=scopes)
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


@pytest.fixture
def routing_key(service):
    _, key = create_integration(name="pd", kind="pagerduty", service=service)
    return key


def am_alert(starts_at):
    return {"version": "4", "status": "firing", "receiver": "im", "groupKey": "{}",
            "alerts": [{"status": "firing", "labels": {"alertname": "ClockSkew"}, "startsAt": starts_at}]}


# A start time more than a year away is kept as unknown, said so, and the incident stays readable.


@pytest.mark.parametrize("kind", ["alertmanager", "grafana", "generic", "pagerduty"])
def test_a_start_time_far_from_now_is_kept_as_unknown_and_the_incident_stays_readable(client, ingest_path, routing_key, api, kind):
    if kind == "pagerduty":
        body = {**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key}
        body["payload"]["timestamp"] = FAR_FUTURE
        response = post(client, "/v2/enqueue", body)
        field = "payload.timestamp"
    elif kind == "generic":
        response = post(client, ingest_path("generic"), {"title": "Clock skew", "timestamp": FAR_FUTURE})
        field = "timestamp"
    else:
        response = post(client, ingest_path(kind), am_alert(FAR_FUTURE) | {"version": "4" if kind == "alertmanager" else "1"})
        field = "alerts[0].startsAt"

    assert response.status_code == 202, response.content
    alert = Alert.objects.get()
    assert alert.starts_at is None
    assert alert.payload  # the sender's payload, with its time as sent
    incident = Incident.objects.get()
    assert f"{field} {FAR_FUTURE} is more than a year from now: recorded as unknown." in incident.description
    detail = client.get(f"/api/v1/incidents/{incident.pk}/", **api)
    assert detail.status_code == 200
    assert "recorded as unknown" in detail.json()["description"]


def test_start_times_within_a_year_are_kept_and_unparseable_ones_are_still_refused():
    now = datetime.now(UTC)
    for moment in (now - timedelta(days=360), now + timedelta(days=360)):
        [event] = alertmanager.parse(am_alert(moment.isoformat()))
        assert event.starts_at == moment and event.description == ""
    [event] = alertmanager.parse(am_alert((now - timedelta(days=370)).isoformat()))
    assert event.starts_at is None and "recorded as unknown" in event.description
    with pytest.raises(PayloadError) as error:
        generic.parse({"title": "t", "timestamp": "next tuesday"})
    assert error.value.field == "timestamp"
    with pytest.raises(PayloadError) as error:
        pagerduty.parse({"event_action": "trigger", "payload": {"summary": "s", "source": "h", "severity": "info",
                                                                 "timestamp": 1700000000}})
    assert error.value.field == "payload.timestamp"


# Depth is capped where bodies are parsed.


def test_a_body_nested_deeper_than_the_limit_is_a_400_naming_body(client, ingest_path):
    response = post(client, ingest_path("generic"), {"title": "deep", "details": nested(300)})
    assert response.status_code == 400 and response.json()["field"] == "body"
    assert str(MAX_DEPTH) in response.json()["error"]
    assert Alert.objects.count() == 0


def test_a_body_at_the_limit_is_stored_and_read_back(client, ingest_path, api):
    details = nested(MAX_DEPTH - 1)  # the body object is one level more
    response = post(client, ingest_path("generic"), {"title": "deep", "details": details})
    assert response.status_code == 202, response.content
    incident = Incident.objects.get()
    alerts = client.get(f"/api/v1/incidents/{incident.pk}/", **api).json()["alerts"]
    assert alerts[0]["payload"]["details"] == details


def test_pagerduty_and_opsgenie_refuse_deep_bodies_in_their_own_shapes(client, routing_key, service):
    body = {**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key}
    body["payload"]["custom_details"] = {"x": nested(300)}
    response = post(client, "/v2/enqueue", body)
    assert response.status_code == 400 and response.json()["errors"][0].startswith("'body'")

    _, key = create_integration(name="og", kind="opsgenie", service=service)
    response = post(client, "/opsgenie/v2/alerts", {"message": "deep", "details": nested(300)},
                    HTTP_AUTHORIZATION=f"GenieKey {key}")
    assert response.status_code == 422 and "body" in response.json()["errors"]
    assert Alert.objects.count() == 0


def test_the_api_refuses_bodies_nested_too_deep_for_python(client, api, service):
    incident = IncidentFactory(service=service)
    deep = "[" * 50_000 + "]" * 50_000
    response = client.post(f"/api/v1/incidents/{incident.pk}/notes/", deep, content_type="application/json", **api)
    assert response.status_code == 400 and response.json()["field"] == "body"
    response = post(client, f"/api/v1/incidents/{incident.pk}/notes/", {"text": nested(100)}, **api)
    assert response.status_code == 400 and response.json()["field"] == "body"


def test_a_slack_callback_nested_too_deep_is_refused_before_bolt_reads_it(client):
    deep = "[" * 50_000 + "]" * 50_000
    assert post(client, "/integrations/slack/events", deep).status_code == 401
    form = client.post("/integrations/slack/events", "payload=" + deep, content_type="application/x-www-form-urlencoded")
    assert form.status_code == 401


# A value of the wrong type is named, whatever its type.


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("alertmanager", am_alert("2026-12-01T10:00:00Z") | {"alerts": [{"labels": {"a": "b"}, "status": ["firing"]}]},
         "alerts[0].status"),
        ("generic", {"title": "t", "status": {"firing": True}}, "status"),
    ],
)
def test_a_choice_given_a_list_or_an_object_is_a_400_naming_it(client, ingest_path, kind, body, field):
    response = post(client, ingest_path(kind), body)
    assert response.status_code == 400 and response.json()["field"] == field


def test_an_opsgenie_priority_given_a_list_is_a_422_naming_it(client, service):
    _, key = create_integration(name="og", kind="opsgenie", service=service)
    response = post(client, "/opsgenie/v2/alerts", {"message": "m", "priority": ["P1"]}, HTTP_AUTHORIZATION=f"GenieKey {key}")
    assert response.status_code == 422 and list(response.json()["errors"]) == ["priority"]


# NUL, which PostgreSQL text cannot hold, is refused wherever a client can put it.


def test_nul_in_a_calendar_feeds_token_is_a_400_not_a_500(client):
    for path in ("/ical/schedule/%00.ics", "/ical/user/%00.ics"):
        response = client.get(path)
        assert response.status_code == 400 and response.json()["field"] == "path"


def test_a_portal_note_with_nul_is_refused_naming_the_field_and_stores_nothing(client, responder, service):
    incident = IncidentFactory(service=service)
    client.force_login(responder)
    response = client.post(reverse("portal:incident-note", args=[incident.pk]), {"text": "rolled back\x00"})
    assert response.status_code == 400 and response.json()["field"] == "text"
    assert not AuditEntry.objects.filter(verb="incident.note_added").exists()


def test_nul_in_a_query_or_a_cookie_is_a_400_naming_it(client, responder):
    client.force_login(responder)
    response = client.get("/incidents/?service=%00")
    assert response.status_code == 400 and response.json()["field"] == "service"
    client.cookies["sessionid"] = "abcdefgh\x00ijklmnop"
    response = client.get("/incidents/")
    assert response.status_code == 400 and response.json()["field"] == "cookie sessionid"


def test_nul_in_a_senders_url_is_a_400(client, service):
    _, key = create_integration(name="og", kind="opsgenie", service=service)
    response = post(client, "/opsgenie/v2/alerts/%00/close?identifierType=alias", {}, HTTP_AUTHORIZATION=f"GenieKey {key}")
    assert response.status_code == 400 and response.json()["field"] == "path"


@pytest.fixture
def route_url(service):
    integration, _ = create_integration(name="am", kind="alertmanager", service=service)
    route = Route.objects.create(integration=integration, matchers=['env="prod"'], service=service)
    return f"/api/v1/integrations/{integration.pk}/routes/{route.pk}/"


@pytest.mark.parametrize(
    ("body", "field"),
    [({"service": "check\x00out"}, "service"), ({"matchers": ["env=prod", "team=a\x00b"]}, "matchers.1")],
)
def test_nul_in_any_field_of_an_api_body_is_a_400_naming_it(client, api, route_url, body, field):
    response = client.patch(route_url, json.dumps(body), content_type="application/json", **api)
    assert response.status_code == 400, response.content
    assert response.json()["field"] == field


def test_nul_in_a_form_patched_to_the_api_is_a_400_naming_the_field(client, api, route_url):
    form = client.patch(route_url, "service=check%00out", content_type="application/x-www-form-urlencoded", **api)
    assert form.status_code == 400 and form.json()["field"] == "service"
    multipart = client.generic(
        "PATCH", route_url, b'--b\r\nContent-Disposition: form-data; name="service"\r\n\r\ncheck\x00out\r\n--b--\r\n',
        content_type="multipart/form-data; boundary=b", **api,
    )
    assert multipart.status_code == 400 and multipart.json()["field"] == "service"
    assert Route.objects.get().service.slug == "checkout"


# Field-mapping templates: runtime errors, time and output are bounded, and named.


def templated(service, template):
    integration, token = create_integration(name="mapped", kind="generic", service=service)
    integration.templates = {"title": template}
    integration.full_clean()
    integration.save()
    return urlsplit(ingestion_url(token, "generic")).path


@pytest.mark.parametrize(
    ("template", "problem"),
    [
        ("{{ 1 / 0 }}", "ZeroDivisionError"),
        ("{{ payload.name + 1 }}", "TypeError"),
        ("{{ range(10**9) | list | length }}", "Range too big"),
        ("{{ 'x' * 10**9 }}", "repeating a sequence"),
        ("{{ 7 ** 100000 }}", "a power of more than"),
        ("{% for i in range(100000) %}{{ payload.name }}{% endfor %}", f"renders more than {templating.MAX_OUTPUT}"),
        ("{% macro again() %}{{ again() }}{% endmacro %}{{ again() }}", "RecursionError"),
        ("{{ payload.tags.append('x') }}", "unsafe"),
    ],
)
def test_a_template_that_fails_on_a_payload_is_a_400_naming_it(client, service, template, problem):
    response = post(client, templated(service, template), {"name": "checkout", "tags": []})
    assert response.status_code == 400, response.content
    assert response.json()["field"] == "templates.title"
    assert problem in response.json()["error"]
    assert Alert.objects.count() == 0


def test_a_template_that_loops_too_long_stops_at_its_budget(client, service):
    path = templated(service, "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}")
    started = time.monotonic()
    response = post(client, path, {"name": "checkout"})
    assert response.status_code == 400 and response.json()["field"] == "templates.title"
    assert "took longer than" in response.json()["error"]
    assert time.monotonic() - started < templating.BUDGET_SECONDS + 1
