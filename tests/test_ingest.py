import json
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client as DjangoClient


from apps.audit.models import AuditEntry
from apps.incidents.models import Alert, Incident
from incident_manager.logfilters import RedactSecrets

from .conftest import load_fixture

pytestmark = pytest.mark.django_db


def post(client, path, body, **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post(path, data=data, content_type="application/json", **extra)


def test_alertmanager_group_opens_one_incident_per_alert(client, ingest_path):
    response = post(client, ingest_path("alertmanager"), load_fixture("alertmanager_webhook_v4_firing.json"))

    assert response.status_code == 202
    alerts = response.json()["alerts"]
    assert [a["action"] for a in alerts] == ["created", "created"]
    assert [a["deduplicated"] for a in alerts] == [False, False]
    incidents = Incident.objects.order_by("title")
    assert [i.title for i in incidents] == ["CPU usage above 90% on web-01:9100", "CPU usage above 90% on web-02:9100"]
    assert {i.severity for i in incidents} == {"critical"}
    assert {i.dedup_key for i in incidents} == {"f42295278b9c7421", "c3d476e5d80a99d6"}
    assert [a["incident"] for a in alerts] == [i.pk for i in incidents]  # answers in payload order
    first = incidents[0].alerts.get()
    assert first.payload["fingerprint"] == "f42295278b9c7421"
    assert first.group_key == '{}/{severity="critical"}:{alertname="HighCPUUsage"}'
    assert AuditEntry.objects.filter(verb="incident.triggered").count() == 2


def test_repeat_appends_and_resolved_group_resolves(client, ingest_path):
    path = ingest_path("alertmanager")
    post(client, path, load_fixture("alertmanager_webhook_v4_firing.json"))
    again = post(client, path, load_fixture("alertmanager_webhook_v4_firing.json"))
    assert [a["deduplicated"] for a in again.json()["alerts"]] == [True, True]
    assert list(Incident.objects.values_list("alert_count", flat=True)) == [2, 2]

    resolved = post(client, path, load_fixture("alertmanager_webhook_v4_resolved.json"))

    assert resolved.status_code == 202
    assert [a["action"] for a in resolved.json()["alerts"]] == ["resolved", "resolved"]
    assert set(Incident.objects.values_list("status", flat=True)) == {"resolved"}
    assert AuditEntry.objects.filter(verb="incident.resolved", actor_label="integration:alertmanager test").count() == 2
    # The same alert firing again after resolution opens a new incident.
    reopened = post(client, path, load_fixture("alertmanager_webhook_v4_firing.json"))
    assert [a["action"] for a in reopened.json()["alerts"]] == ["created", "created"]
    assert Incident.objects.count() == 4


def test_resolved_alert_without_open_incident_is_kept(client, ingest_path):
    response = post(client, ingest_path("alertmanager"), load_fixture("alertmanager_webhook_v4_resolved.json"))
    assert response.status_code == 202
    assert [a["action"] for a in response.json()["alerts"]] == ["ignored", "ignored"]
    assert Alert.objects.filter(incident=None).count() == 2
    assert Incident.objects.count() == 0


def test_generic_alert_and_its_resolution(client, ingest_path):
    path = ingest_path("generic")
    body = {
        "title": "Token spend 40% over budget",
        "severity": "high",
        "dedup_key": "llm-cost/gpt",
        "description": "Spend is $1,400 against $1,000 planned.",
        "source": "cost-watcher",
        "labels": {"model": "claude-haiku", "env": "prod"},
    }
    created = post(client, path, body).json()["alerts"][0]
    incident = Incident.objects.get()
    assert (incident.title, incident.severity, incident.dedup_key) == (body["title"], "high", "llm-cost/gpt")
    assert created["incident"] == incident.pk and created["incident_number"] == incident.number

    done = post(client, path, {**body, "status": "resolved"}).json()["alerts"][0]
    assert done["action"] == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.alert_count == 2


def test_unknown_token_or_wrong_format_is_404(client, ingest_path):
    assert post(client, "/api/v1/ingest/nope/alertmanager", {"alerts": []}).status_code == 404
    generic_path = ingest_path("generic")
    as_alertmanager = generic_path.rsplit("/", 1)[0] + "/alertmanager"
    assert post(client, as_alertmanager, load_fixture("alertmanager_webhook_v4_firing.json")).status_code == 404


def test_get_is_not_allowed(client, ingest_path):
    assert client.get(ingest_path("generic")).status_code == 405


FIRING = load_fixture("alertmanager_webhook_v4_firing.json")


def am(**changes):
    body = json.loads(json.dumps(FIRING))
    for path, value in changes.items():
        target = body
        *parents, leaf = path.split("__")
        for part in parents:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(leaf) if leaf.isdigit() else leaf] = value
    return body


@pytest.mark.parametrize(
    ("kind", "body", "field"),
    [
        ("alertmanager", b"{not json", "body"),
        ("alertmanager", b"", "body"),
        ("alertmanager", b"\xff\xfe", "body"),
        ("alertmanager", b'{"alerts": [NaN]}', "body"),
        ("alertmanager", b'{"x": 1e999}', "body"),
        ("alertmanager", b"[" * 100_000 + b"]" * 100_000, "body"),
        ("alertmanager", b'{"alerts": [{"labels": {"a": "\\u0000"}}]}', "body"),
        ("alertmanager", [], "body"),
        ("alertmanager", {"version": "4"}, "alerts"),
        ("alertmanager", am(version="3"), "version"),
        ("alertmanager", am(alerts=[]), "alerts"),
        ("alertmanager", am(alerts="many"), "alerts"),
        ("alertmanager", am(alerts__1="x"), "alerts[1]"),
        ("alertmanager", am(alerts__1__labels={}), "alerts[1].labels"),
        ("alertmanager", am(alerts__1__labels={"a": {"b": 1}}), "alerts[1].labels.a"),
        ("alertmanager", am(alerts__1__status="pending"), "alerts[1].status"),
        ("alertmanager", am(alerts__1__startsAt="yesterday"), "alerts[1].startsAt"),
        ("alertmanager", am(alerts__1__fingerprint=7), "alerts[1].fingerprint"),
        ("alertmanager", am(groupKey=["x"]), "groupKey"),
        ("generic", {}, "title"),
        ("generic", {"title": ""}, "title"),
        ("generic", {"title": 3}, "title"),
        ("generic", {"title": "x" * 501}, "title"),
        ("generic", {"title": "t", "severity": "apocalyptic"}, "severity"),
        ("generic", {"title": "t", "labels": ["a"]}, "labels"),
        ("generic", {"title": "t", "status": "open"}, "status"),
        ("generic", {"title": "t", "dedup_key": "k" * 256}, "dedup_key"),
        ("generic", [{"title": "ok"}, {"title": None}], "[1].title"),
        ("generic", "just a string", "body"),
    ],
)
def test_bad_bodies_are_400_naming_the_field_and_write_nothing(client, ingest_path, kind, body, field):
    path = ingest_path(kind)
    # Something already stored must survive a bad request untouched.
    post(client, ingest_path("generic"), {"title": "existing", "dedup_key": "existing"})
    before = (Incident.objects.count(), Alert.objects.count(), AuditEntry.objects.count())

    response = post(client, path, body)

    assert response.status_code == 400, response.content
    assert response.json()["field"] == field
    assert response.json()["error"]
    assert (Incident.objects.count(), Alert.objects.count(), AuditEntry.objects.count()) == before
    assert Incident.objects.get().alert_count == 1


def test_body_over_the_limit_is_413(client, ingest_path, settings):
    settings.INGEST_MAX_BODY_BYTES = 1000
    response = post(client, ingest_path("generic"), {"title": "x", "description": "y" * 2000})
    assert response.status_code == 413
    assert Alert.objects.count() == 0


def post_concurrently(path: str, bodies: list[str], workers: int) -> list[int]:
    """POST each body from its own thread and database connection, as gunicorn workers would."""

    def send(body):
        try:
            return DjangoClient().post(path, data=body, content_type="application/json").status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_posts_of_one_alert_make_one_incident(ingest_path):
    body = json.dumps({**FIRING, "alerts": FIRING["alerts"][:1]})

    statuses = post_concurrently(ingest_path("alertmanager"), [body] * 50, workers=16)

    assert statuses == [202] * 50
    incident = Incident.objects.get()
    assert incident.alert_count == 50
    assert incident.alerts.count() == 50
    assert incident.alerts.filter(deduplicated=False).count() == 1


@pytest.mark.django_db(transaction=True)
def test_concurrent_groups_with_the_same_alerts_in_opposite_order_do_not_deadlock(ingest_path):
    forward = json.dumps(FIRING)
    backward = json.dumps({**FIRING, "alerts": FIRING["alerts"][::-1]})

    statuses = post_concurrently(ingest_path("alertmanager"), [forward, backward] * 20, workers=8)

    assert statuses == [202] * 40
    assert sorted(Incident.objects.values_list("alert_count", flat=True)) == [40, 40]


def test_tokens_never_reach_the_logs(ingest_path):
    """Django logs the path of every 4xx/5xx; the configured handler masks the token."""
    path = ingest_path("generic")
    token = path.split("/")[-2]
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", (path,), None)
    (console,) = [
        h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecrets) for f in h.filters)
    ]

    assert console.filter(record)
    line = console.format(record)
    assert token not in line
    assert "Not Found: /api/v1/ingest/[redacted]/generic" in line


def test_a_group_of_hundreds_of_alerts_is_stored_whole(client, ingest_path):
    template = FIRING["alerts"][0]
    alerts = [
        {**template, "labels": {**template["labels"], "instance": f"gpu-{i}:9100"}, "fingerprint": f"{i:016x}"}
        for i in range(300)
    ]
    body = {**FIRING, "alerts": alerts, "truncatedAlerts": 12}
    response = post(client, ingest_path("alertmanager"), body)
    assert response.status_code == 202
    assert len(response.json()["alerts"]) == 300
    assert Incident.objects.count() == 300 and Alert.objects.count() == 300
    # The 12 that Alertmanager's max_alerts left out are named where responders look.
    assert Incident.objects.first().description.endswith(
        "Alertmanager left 12 more alerts of this group out of its notification (max_alerts)."
    )


@pytest.mark.parametrize("value", [-1, "12", 1.5, True])
def test_a_bad_truncated_alerts_count_is_a_400_naming_it(client, ingest_path, value):
    response = post(client, ingest_path("alertmanager"), {**FIRING, "truncatedAlerts": value})
    assert (response.status_code, response.json()["field"]) == (400, "truncatedAlerts")
    assert not Alert.objects.exists()


@pytest.mark.parametrize("path", ["/api/v1/heartbeat/s3cr3tTOKEN", "/ical/schedule/s3cr3tTOKEN.ics", "/ical/user/s3cr3tTOKEN.ics"])
def test_other_secret_urls_are_masked_in_logs_too(path):
    record = logging.LogRecord("django.request", logging.WARNING, __file__, 1, "Not Found: %s", (path,), None)
    (console,) = [h for h in logging.getLogger().handlers if any(isinstance(f, RedactSecrets) for f in h.filters)]
    console.filter(record)
    assert "s3cr3tTOKEN" not in console.format(record)


def test_repeats_are_stored_by_statements_prepared_on_the_server(client, ingest_path):
    """Planning ingest's statements costs more PostgreSQL time than running them, and
    Django turns psycopg's prepared statements off unless told otherwise."""
    body = load_fixture("alertmanager_webhook_v4_firing.json")
    for _ in range(2):
        assert post(client, ingest_path("alertmanager"), body).status_code == 202

    with connection.cursor() as cursor:
        cursor.execute("SELECT statement, generic_plans FROM pg_prepared_statements WHERE NOT from_sql")
        prepared = cursor.fetchall()
    assert any("incidents_append_repeats" in sql and plans for sql, plans in prepared)  # the repeats
    assert any("INSERT INTO incidents_alert" in sql and plans for sql, plans in prepared)  # the first alerts
