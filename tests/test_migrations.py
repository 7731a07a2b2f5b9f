"""Moving the outbound models from integrations to notifications (docs/adr/0009) keeps
every row: a database migrated up to the old schema, holding data, migrates forward
and the same rows read through the new app."""

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

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
