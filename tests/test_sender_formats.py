"""Senders speaking their own formats: Grafana's webhook, PagerDuty's Events API v2
(driven by PagerDuty's own Python client, `pagerduty`) and Opsgenie's Alert API."""

import json
from urllib.parse import quote

import pagerduty
import pytest
import time_machine

from apps.accounts.models import ApiKey
from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.incidents.models import Alert, Incident
from apps.integrations.services import create_integration

from .conftest import load_fixture

pytestmark = pytest.mark.django_db


def post(client, path, body, **headers):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", headers=headers)


# Grafana ---------------------------------------------------------------------


def test_grafana_alerts_open_incidents_and_resolve(client, ingest_path):
    path = ingest_path("grafana")
    firing = load_fixture("grafana_webhook_firing.json")

    response = post(client, path, firing)

    assert response.status_code == 202
    incidents = Incident.objects.order_by("title")
    assert [(i.title, i.severity, i.dedup_key) for i in incidents] == [
        ("High CPU usage on web-01:9100", "critical", "f514ce91fea3a7cf"),
        ("High CPU usage on web-02:9100", "critical", "6bcd96f0923ae30e"),
    ]
    assert incidents[0].alerts.get().source == "grafana"

    resolved = {**firing, "status": "resolved", "state": "ok"}
    resolved["alerts"] = [{**a, "status": "resolved", "endsAt": "2026-11-25T17:05:00Z"} for a in firing["alerts"]]
    assert [a["action"] for a in post(client, path, resolved).json()["alerts"]] == ["resolved", "resolved"]
    assert set(Incident.objects.values_list("status", flat=True)) == {"resolved"}


def test_grafana_wrong_version_names_the_field(client, ingest_path):
    body = {**load_fixture("grafana_webhook_firing.json"), "version": "2"}
    response = post(client, ingest_path("grafana"), body)
    assert response.status_code == 400 and response.json()["field"] == "version"


# PagerDuty Events API v2 -------------------------------------------------------


@pytest.fixture
def routing_key(service):
    _, key = create_integration(name="pd", kind="pagerduty", service=service)
    return key


@pytest.mark.django_db(transaction=True)
def test_pagerduty_client_triggers_acknowledges_and_resolves(request, asgi_tls_server, routing_key):
    base_url, tls = asgi_tls_server
    session = pagerduty.EventsApiV2Client(routing_key, base_url=base_url, verify=tls)
    request.addfinalizer(session.close)

    dedup_key = session.trigger(
        "GPU memory 94% on inference-3", "inference-3", dedup_key="gpu-mem/inference-3", severity="critical",
        custom_details={"model": "llama-3-70b", "gpu_memory_percent": 94},
    )
    assert dedup_key == "gpu-mem/inference-3"
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.status) == ("GPU memory 94% on inference-3", "critical", "triggered")
    assert incident.labels["model"] == "llama-3-70b"

    assert session.acknowledge(dedup_key) == dedup_key
    incident.refresh_from_db()
    assert incident.status == "acknowledged"

    assert session.resolve(dedup_key) == dedup_key
    incident.refresh_from_db()
    assert incident.status == "resolved"
    assert list(AuditEntry.objects.filter(incident=incident).values_list("verb", "actor_label")) == [
        ("incident.triggered", "integration:pd"),
        ("incident.acknowledged", "integration:pd"),
        ("incident.resolved", "integration:pd"),
    ]
    assert incident.alerts.count() == incident.alert_count == 3


@pytest.mark.django_db(transaction=True)
def test_pagerduty_trigger_without_dedup_key_gets_one(request, asgi_tls_server, routing_key):
    base_url, tls = asgi_tls_server
    session = pagerduty.EventsApiV2Client(routing_key, base_url=base_url, verify=tls)
    request.addfinalizer(session.close)
    key = session.trigger("Token spend 30% over plan", "cost-watcher", severity="warning")
    assert len(key) == 32
    assert Incident.objects.get().dedup_key == key and Incident.objects.get().severity == "medium"


@time_machine.travel("2026-11-26T00:00:00Z", tick=True)  # the example's time is within a year of now
def test_pagerduty_documented_trigger_is_accepted(client, routing_key):
    body = {**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key}
    response = post(client, "/v2/enqueue", body)
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "web-01.example.org/cpu"}
    incident = Incident.objects.get()
    assert incident.labels["component"] == "nginx" and incident.labels["class"] == "cpu load"
    assert Alert.objects.get().starts_at.isoformat() == "2026-11-25T16:58:23.749000+00:00"


def test_pagerduty_acknowledge_for_nothing_open_is_kept_and_dropped(client, routing_key):
    body = {**load_fixture("pagerduty_events_v2_acknowledge.json"), "routing_key": routing_key}
    response = post(client, "/v2/enqueue", body)
    assert response.status_code == 202
    assert Incident.objects.count() == 0 and Alert.objects.get().incident is None


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"event_action": None}, "'event_action' is missing or blank"),
        ({"event_action": "explode"}, "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)"),
        ({"payload": None}, "'payload' is missing or not an object"),
        ({"payload": {"summary": "s", "severity": "critical"}}, "'payload.source' is missing or blank"),
        ({"payload": {"summary": "s", "source": "x", "severity": "sev1"}}, "'payload.severity' is invalid (must be one of: critical, error, warning, info)"),
        ({"payload": {"summary": "s" * 1025, "source": "x", "severity": "info"}}, "'payload.summary' must be at most 1024 characters"),
        ({"event_action": "resolve", "dedup_key": None}, "'dedup_key' is missing or blank"),
        ({"routing_key": None}, "'routing_key' is missing or blank"),
        ({"routing_key": "short"}, "Length of 'routing_key' is incorrect (should be 32 characters), or it holds non-alphanumeric characters"),
        ({"routing_key": "0" * 32}, "Invalid routing key"),
    ],
)
def test_pagerduty_invalid_events_get_pagerdutys_400(client, routing_key, change, error):
    body = {**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key, **change}
    response = post(client, "/v2/enqueue", {k: v for k, v in body.items() if v is not None})
    assert response.status_code == 400
    assert response.json() == {"status": "invalid event", "message": "Event object is invalid", "errors": [error]}
    assert Alert.objects.count() == 0


def test_pagerduty_malformed_json_is_400(client, routing_key):
    response = post(client, "/v2/enqueue", b"{oops")
    assert response.status_code == 400 and response.json()["status"] == "invalid event"


# Opsgenie Alert API --------------------------------------------------------------


@pytest.fixture
def genie_key(service):
    _, key = create_integration(name="og", kind="opsgenie", service=service)
    return {"Authorization": f"GenieKey {key}"}


def test_opsgenie_create_then_acknowledge_and_close_by_alias(client, genie_key):
    created = post(client, "/opsgenie/v2/alerts", load_fixture("opsgenie_create_alert.json"), **genie_key)
    assert created.status_code == 202
    assert created.json()["result"] == "Request will be processed" and created.json()["requestId"]
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.dedup_key) == (
        "CPU usage above 90% on web-01.example.org", "critical", "web-01.example.org/cpu",
    )
    assert incident.description.startswith("CPU usage has been 97.3%")
    assert incident.labels["alertname"] == "HighCPUUsage"

    alias = quote("web-01.example.org/cpu", safe="")
    ack = post(client, f"/opsgenie/v2/alerts/{alias}/acknowledge?identifierType=alias", b"", **genie_key)
    assert ack.status_code == 202
    incident.refresh_from_db()
    assert incident.status == "acknowledged"

    close = post(client, f"/opsgenie/v2/alerts/{alias}/close?identifierType=alias",
                 load_fixture("opsgenie_close_alert.json"), **genie_key)
    assert close.status_code == 202
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_opsgenie_refuses_bad_keys_and_bad_bodies(client, genie_key):
    body = load_fixture("opsgenie_create_alert.json")
    assert post(client, "/opsgenie/v2/alerts", body).status_code == 401
    assert post(client, "/opsgenie/v2/alerts", body, Authorization="GenieKey nope").status_code == 401
    missing = post(client, "/opsgenie/v2/alerts", {**body, "message": ""}, **genie_key)
    assert missing.status_code == 422 and missing.json()["errors"] == {"message": "must not be empty"}
    priority = post(client, "/opsgenie/v2/alerts", {**body, "priority": "P9"}, **genie_key)
    assert priority.status_code == 422 and "priority" in priority.json()["errors"]
    by_id = post(client, "/opsgenie/v2/alerts/abc/close", b"", **genie_key)
    assert by_id.status_code == 422 and "identifierType" in by_id.json()["errors"]
    assert Alert.objects.count() == 0


# Heartbeats ---------------------------------------------------------------------


def test_a_quiet_heartbeat_opens_an_incident_and_the_next_ping_resolves_it(client, service):
    import time_machine
    from datetime import timedelta
    from urllib.parse import urlsplit

    from django.utils import timezone

    from apps.integrations.heartbeats import check_heartbeats
    from apps.integrations.services import ingestion_url

    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        integration, token = create_integration(name="nightly-backup", kind="heartbeat", service=service, heartbeat_minutes=10)
        ping = urlsplit(ingestion_url(token, "heartbeat")).path
        assert client.get(ping).json() == {"status": "ok", "resolved_missed_heartbeat": False}

        clock.shift(timedelta(minutes=9))
        assert check_heartbeats() == 0
        clock.shift(timedelta(minutes=2))
        assert check_heartbeats() == 1
        assert check_heartbeats() == 0  # already open: not twice
        incident = Incident.objects.get()
        assert (incident.title, incident.status, incident.severity) == ("Heartbeat missed: nightly-backup", "triggered", "high")

        assert client.post(ping).json() == {"status": "ok", "resolved_missed_heartbeat": True}
        incident.refresh_from_db()
        assert incident.status == "resolved"
        assert check_heartbeats() == 0

    assert client.get(ping.replace(token, "nope")).status_code == 404


def test_a_heartbeat_that_never_pinged_counts_from_its_creation(service):
    import time_machine
    from datetime import timedelta

    from django.utils import timezone

    from apps.integrations.heartbeats import check_heartbeats

    with time_machine.travel(timezone.now(), tick=False) as clock:
        create_integration(name="cron", kind="heartbeat", service=service, heartbeat_minutes=5)
        assert check_heartbeats() == 0
        clock.shift(timedelta(minutes=6))
        assert check_heartbeats() == 1


# Generic JSON with field-mapping templates (a sender we have no parser for) -----

DATADOG_TEMPLATES = {
    "title": "{{ payload.alert_title }}",
    "description": "{{ payload.text_only_msg }}",
    "severity": "{{ payload.alert_priority }}",
    "dedup_key": "{{ payload.aggreg_key }}",
    "status": "{{ 'resolved' if payload.alert_transition == 'Recovered' else 'firing' }}",
    "source": "datadog",
}


def test_templates_map_an_unknown_senders_json(client, service):
    from urllib.parse import urlsplit

    from apps.integrations.services import ingestion_url

    integration, token = create_integration(name="datadog", kind="generic", service=service)
    integration.templates = DATADOG_TEMPLATES
    integration.full_clean()
    integration.save()
    path = urlsplit(ingestion_url(token, "generic")).path
    triggered = load_fixture("datadog_webhook_triggered.json")

    assert post(client, path, triggered).status_code == 202
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.dedup_key) == (
        "p95 latency above 2x baseline on chat-api", "high", "7f3a2c1d9e8b4a60",
    )
    assert incident.description.startswith("Avg p95 latency of chat-api is 2.41 s")
    assert incident.alerts.get().payload == triggered  # the sender's JSON, as sent

    recovered = {**triggered, "alert_transition": "Recovered", "title": "[Recovered] p95 latency ..."}
    assert post(client, path, recovered).json()["alerts"][0]["action"] == "resolved"


def test_a_template_that_renders_nothing_usable_is_a_400_naming_the_field(client, service):
    from urllib.parse import urlsplit

    from apps.integrations.services import ingestion_url

    integration, token = create_integration(name="dd", kind="generic", service=service)
    integration.templates = {"title": "{{ payload.missing }}"}
    integration.save()
    response = post(client, urlsplit(ingestion_url(token, "generic")).path, {"something": "else"})
    assert response.status_code == 400 and response.json()["field"] == "title"


def test_templates_are_checked_when_saved(service):
    from django.core.exceptions import ValidationError

    integration, _ = create_integration(name="dd", kind="generic", service=service)
    integration.templates = {"title": "{{ payload.x", "priority": "{{ 1 }}"}
    with pytest.raises(ValidationError) as error:
        integration.full_clean()
    message = error.value.message_dict["templates"][0]
    assert "title does not compile" in message and "priority is not a mapped field" in message


def test_the_token_may_come_in_a_bearer_header_instead_of_the_url(client, service):
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    body = load_fixture("alertmanager_webhook_v4_firing.json")
    assert post(client, "/api/v1/ingest/alertmanager", body, Authorization=f"Bearer {token}").status_code == 202
    assert post(client, "/api/v1/ingest/alertmanager", body, Authorization="Bearer nope").status_code == 404
    assert post(client, "/api/v1/ingest/alertmanager", body).status_code == 404
    assert Incident.objects.count() == 2


@pytest.mark.parametrize("kind", ["pagerduty", "opsgenie", "heartbeat"])
def test_integrations_with_endpoints_of_their_own_are_404_at_the_ingest_url(client, service, kind):
    _, token = create_integration(name=kind, kind=kind, service=service, heartbeat_minutes=5 if kind == "heartbeat" else None)
    response = post(client, f"/api/v1/ingest/{token}/{kind}", {"title": "x"})
    assert response.status_code == 404 and Alert.objects.count() == 0


# Body signatures (Grafana's HMAC option) -------------------------------------------


def test_a_signed_integration_refuses_unsigned_or_forged_bodies(client, service):
    import hashlib
    import hmac
    import time
    from urllib.parse import urlsplit

    from apps.accounts.sealed import seal
    from apps.integrations.services import ingestion_url

    integration, token = create_integration(name="grafana", kind="grafana", service=service)
    integration.signing_secret = seal("s3cret")
    integration.signature_timestamp_header = "X-Grafana-Alerting-Signature-Timestamp"
    integration.save()
    path = urlsplit(ingestion_url(token, "grafana")).path
    body = json.dumps(load_fixture("grafana_webhook_firing.json")).encode()
    stamp = str(int(time.time()))

    def sign(secret, ts, payload):
        return hmac.new(secret.encode(), ts.encode() + b":" + payload, hashlib.sha256).hexdigest()

    assert post(client, path, body).status_code == 401
    forged = {"X-Grafana-Alerting-Signature": sign("guess", stamp, body), "X-Grafana-Alerting-Signature-Timestamp": stamp}
    assert post(client, path, body, **forged).status_code == 401
    old = str(int(time.time()) - 3600)
    stale = {"X-Grafana-Alerting-Signature": sign("s3cret", old, body), "X-Grafana-Alerting-Signature-Timestamp": old}
    assert post(client, path, body, **stale).status_code == 401
    assert Alert.objects.count() == 0

    good = {"X-Grafana-Alerting-Signature": sign("s3cret", stamp, body), "X-Grafana-Alerting-Signature-Timestamp": stamp}
    response = post(client, path, body, **good)
    assert response.status_code == 202 and Alert.objects.count() == 2


# Senders' credentials are not stored (apps/integrations/parsers/credentials.py) -----


def read_alert_payloads(client, incident) -> list[dict]:
    """The alerts' payloads as the API gives them to a reader."""
    _, key = create_api_key(name="reader", scopes=[ApiKey.Scope.INCIDENTS_READ])
    response = client.get(f"/api/v1/incidents/{incident.pk}/", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    return [alert["payload"] for alert in response.json()["alerts"]]


def test_a_pagerduty_routing_key_is_not_stored_nor_shown(client, routing_key):
    trigger = {**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key}
    resolve = {**load_fixture("pagerduty_events_v2_acknowledge.json"), "routing_key": routing_key,
               "event_action": "resolve", "dedup_key": trigger["dedup_key"]}
    assert post(client, "/v2/enqueue", trigger).status_code == 202
    assert post(client, "/v2/enqueue", resolve).status_code == 202

    incident = Incident.objects.get()
    payloads = read_alert_payloads(client, incident)
    assert [p["event_action"] for p in payloads] == ["resolve", "trigger"]  # the rest as sent
    assert payloads[1]["payload"] == trigger["payload"]
    assert routing_key not in json.dumps(payloads)
    assert not Alert.objects.filter(payload__has_key="routing_key").exists()


def test_an_opsgenie_api_key_in_the_body_is_not_stored(client, genie_key):
    key = genie_key["Authorization"].removeprefix("GenieKey ")
    body = {**load_fixture("opsgenie_create_alert.json"), "apiKey": key}
    assert post(client, "/opsgenie/v2/alerts", body, **genie_key).status_code == 202
    alias = quote(body["alias"], safe="")
    assert post(client, f"/opsgenie/v2/alerts/{alias}/close?identifierType=alias", {"apiKey": key, "note": "fixed"},
                **genie_key).status_code == 202

    payloads = read_alert_payloads(client, Incident.objects.get())
    assert payloads == [{"note": "fixed"}, {k: v for k, v in body.items() if k != "apiKey"}]


def test_a_generic_senders_credentials_are_not_stored_but_its_labels_are(client, ingest_path):
    body = {
        "title": "Nightly backup failed", "api_key": "ak-1", "Token": "t-2", "integration-key": "ik-3",
        "routingKey": "rk-4", "labels": {"host": "db-01", "token_bucket": "full"}, "tokens_used": 12,
    }
    assert post(client, ingest_path("generic"), body).status_code == 202

    [payload] = read_alert_payloads(client, Incident.objects.get())
    assert payload == {"title": "Nightly backup failed", "labels": {"host": "db-01", "token_bucket": "full"},
                       "tokens_used": 12}
