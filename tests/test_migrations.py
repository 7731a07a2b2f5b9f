"""Moving the outbound models from integrations to notifications (docs/adr/0009) keeps
every row: a database migrated up to the old schema, holding data, migrates forward
and the same rows read through the new app."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from apps.incidents.models import Incident
from apps.notifications.models import ContactMethod, Notification, SlackWorkspace

from .factories import ServiceFactory, UserFactory

BEFORE = [("integrations", "0007_notification_external_status"), ("notifications", None)]


def migrate(targets):
    """Migrate to `targets`; the models as they were at those migrations."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()  # the applied migrations changed
    return executor.loader.project_state([t for t in targets if t[1]]).apps


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_move_are_the_new_apps_after_it():
    user = UserFactory(username="olga")
    service = ServiceFactory(slug="payments")
    incident = Incident.objects.create(
        title="Disk full", severity="high", service=service, dedup_key="k", fingerprint="f",
        first_alert_at="2026-12-01T10:00:00Z", last_alert_at="2026-12-01T10:00:00Z",
    )
    ContentType.objects.get_for_model(Notification)  # as an admin's permissions would refer to it
    old = migrate(BEFORE)
    assert ContentType.objects.filter(app_label="integrations", model="notification").exists()
    old_notification = old.get_model("integrations", "Notification")
    row = old_notification.objects.create(
        incident_id=incident.pk, recipient_id=user.pk, channel="sms", idempotency_key="before-the-move",
        status="delivered", external_id="SM123", reason={"level": 1},
    )
    old.get_model("integrations", "ContactMethod").objects.create(user_id=user.pk, kind="sms", address="+4915100000001")
    old.get_model("integrations", "SlackWorkspace").objects.create(team_id="T1", name="Acme")

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    moved = Notification.objects.get(pk=row.pk)
    assert (moved.idempotency_key, moved.status, moved.external_id, moved.recipient, moved.incident) == (
        "before-the-move", "delivered", "SM123", user, incident,
    )
    assert ContactMethod.objects.get(user=user).address == "+4915100000001"
    assert SlackWorkspace.objects.get().team_id == "T1"
    assert ContentType.objects.get_for_model(Notification).app_label == "notifications"
    assert not ContentType.objects.filter(app_label="integrations", model="notification").exists()


@pytest.mark.django_db(transaction=True)
def test_times_python_cannot_read_are_repaired_by_the_migration():
    """Year 10000 (a sender's 9999-12-31T23:59:59-14:00, stored before the parsers
    refused it) made its incident unreadable; migrating forward makes it readable."""
    service = ServiceFactory(slug="payments")
    incident = Incident.objects.create(
        title="Clock skew", severity="high", service=service, dedup_key="k", fingerprint="f",
        first_alert_at="2026-12-01T10:00:00Z", last_alert_at="2026-12-01T10:00:00Z",
    )
    migrate([("incidents", "0014_routes_identity_and_severity_source")])
    alert_columns = (
        "incident_id, source, status, title, severity, dedup_key, fingerprint, group_key, labels, payload, "
        "deduplicated, dedup_reason, dedup_detail, route, received_at, starts_at"
    )
    with connection.cursor() as cursor:
        for title, starts_at in (("bad", "10000-01-01 13:59:59+00"), ("good", "2026-12-01 09:58:00+00")):
            cursor.execute(
                f"INSERT INTO incidents_alert ({alert_columns}) VALUES "
                "(%s, 'alertmanager', 'firing', %s, 'high', 'k', 'f', '', '{}', '{}', false, 'opened', '', '', now(), %s)",
                [incident.pk, title, starts_at],
            )
        cursor.execute(
            "UPDATE incidents_incident SET last_alert_at = '10000-01-01 13:59:59+00' WHERE id = %s", [incident.pk]
        )

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    incident = Incident.objects.get(pk=incident.pk)  # reading it raised DataError before
    assert incident.last_alert_at == incident.created_at
    assert incident.first_alert_at.isoformat() == "2026-12-01T10:00:00+00:00"
    starts = dict(incident.alerts.values_list("title", "starts_at"))
    assert starts["bad"] is None and starts["good"].isoformat() == "2026-12-01T09:58:00+00:00"


@pytest.mark.django_db(transaction=True)
def test_senders_credentials_stored_before_are_scrubbed_by_the_migration():
    """A PagerDuty routing_key (and any top-level key named like a credential) stored
    with an alert before the parsers left them out is gone after migrating; the rest
    of each payload, nested keys of the same names included, is kept."""
    service = ServiceFactory(slug="payments")
    incident = Incident.objects.create(
        title="CPU", severity="high", service=service, dedup_key="k", fingerprint="f",
        first_alert_at="2026-12-01T10:00:00Z", last_alert_at="2026-12-01T10:00:00Z",
    )
    old = migrate([("incidents", "0015_repair_unreadable_times")])
    payloads = {
        "pagerduty": {"routing_key": "e93facc04764012d7bfb002500d5d1a6", "event_action": "trigger",
                      "payload": {"summary": "CPU", "custom_details": {"routing_key": "theirs"}}},
        "opsgenie": {"message": "CPU", "apiKey": "og-key", "details": {"host": "web-01"}},
        "generic": {"title": "CPU", "API-Key": "g1", "Token": "g2", "tokens_used": 3},
        "alertmanager": {"labels": {"alertname": "CPU"}, "fingerprint": "f4229527"},
        "heartbeat": [],
    }
    alert = old.get_model("incidents", "Alert")
    for source, payload in payloads.items():
        alert.objects.create(incident_id=incident.pk, source=source, status="firing", title="CPU", severity="high",
                             dedup_key="k", fingerprint="f", payload=payload, received_at=timezone.now())

    migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())

    assert dict(incident.alerts.values_list("source", "payload")) == {
        "pagerduty": {"event_action": "trigger", "payload": {"summary": "CPU", "custom_details": {"routing_key": "theirs"}}},
        "opsgenie": {"message": "CPU", "details": {"host": "web-01"}},
        "generic": {"title": "CPU", "tokens_used": 3},
        "alertmanager": {"labels": {"alertname": "CPU"}, "fingerprint": "f4229527"},
        "heartbeat": [],
    }
