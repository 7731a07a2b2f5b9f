"""A delivery worker killed mid-send: the next attempt finds out what it can before
sending again, and a page that may have gone out twice says so on the incident."""

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.notifications import outbox
from apps.notifications.models import Notification, SlackMessage

from .conftest import process_env
from .factories import IncidentFactory, MembershipFactory, UserFactory
from .notify_fakes import _clean_breakers, fake_receiver, fake_slack, fake_smtp  # noqa: F401
from .notify_helpers import channel_link, endpoint, notification

ROOT = Path(__file__).resolve().parent.parent
LATER = timedelta(seconds=outbox.SENDING_LEASE_SECONDS + 1)


def reload(n: Notification) -> Notification:
    n.refresh_from_db()
    return n


def deliver_in_a_worker_killed_mid_send(n: Notification, fake, send: str, **env) -> None:
    """deliver(n) in a process of its own, SIGKILLed once the provider has the message
    and before its answer arrives: as a worker dies between the provider's 200 and the row's update."""
    fake.delay = 60  # the provider keeps the answer back
    worker = subprocess.Popen(
        [sys.executable, "-c", f"import django; django.setup(); from apps.notifications.outbox import deliver; deliver({n.pk})"],
        cwd=ROOT, env=process_env(**env), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        fake.wait_for(send, 1, timeout=30)
    finally:
        worker.kill()
        worker.wait(10)
    fake.delay = 0
    # PostgreSQL ends the dead worker's session (and frees the row's lock) when it reads
    # the closed socket: a moment later on a busy machine.
    deadline = time.monotonic() + 10
    while _other_sessions_in_a_transaction():
        assert time.monotonic() < deadline, "the killed worker's session is still open"
        time.sleep(0.05)


def _other_sessions_in_a_transaction() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            " AND state LIKE 'idle in transaction%%'"
        )
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_a_slack_message_posted_before_the_worker_died_is_found_not_posted_again(fake_slack, service):
    link = channel_link(service)
    incident = IncidentFactory(service=service)
    n = notification(incident, "slack", target=f"slack-channel:{link.pk}")

    deliver_in_a_worker_killed_mid_send(n, fake_slack, "chat.postMessage", SLACK_API_URL=fake_slack.api_url)

    row = reload(n)
    assert (row.status, row.attempts, row.sending_since is not None) == ("pending", 1, True)  # the attempt is on record
    assert outbox.deliver(n.pk) == "skipped"  # so fresh it may be a live worker's: left alone
    with time_machine.travel(timezone.now() + LATER):
        assert outbox.deliver(n.pk) == "delivered"

    [posted] = fake_slack.calls("chat.postMessage")  # once, by the killed worker
    assert posted.data["metadata"]["event_payload"]["notification"] == n.pk
    row = reload(n)
    ts = fake_slack.posted[id(posted)]["ts"]
    assert (row.status, row.external_id, row.possible_duplicate, row.sending_since) == ("delivered", ts, False, None)
    assert SlackMessage.objects.get(incident=incident).ts == ts  # later changes update that message
    assert AuditEntry.objects.get(incident=incident, verb="notification.recovered").data["found"] == ts


@pytest.mark.django_db(transaction=True)
def test_a_webhook_cut_off_mid_send_is_sent_again_with_its_webhook_id_and_marked(fake_receiver, service):
    hook = endpoint(service, fake_receiver.url + "/hook")
    n = notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}")

    deliver_in_a_worker_killed_mid_send(n, fake_receiver, "hook")
    with time_machine.travel(timezone.now() + LATER):
        assert outbox.deliver(n.pk) == "delivered"

    first, second = fake_receiver.calls("hook")
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == n.idempotency_key  # receivers drop the repeat
    assert reload(n).possible_duplicate
    assert AuditEntry.objects.filter(incident=n.incident, verb="notification.possible_duplicate").count() == 1


@pytest.mark.django_db
def test_an_email_that_may_have_gone_out_twice_says_so_on_the_incident_page(fake_smtp, service, client):
    person = MembershipFactory(user=UserFactory(username="ann", email="ann@example.org"), team=service.team).user
    incident = IncidentFactory(service=service)
    # What a worker that died mid-send leaves: its attempt on record, never finished.
    n = notification(incident, "email", recipient=person, attempts=1, sending_since=timezone.now() - LATER)

    assert outbox.deliver(n.pk) == "delivered"

    assert len(fake_smtp.messages) == 1 and reload(n).possible_duplicate
    client.force_login(person)
    page = client.get(reverse("portal:incident-detail", args=[incident.pk])).content.decode()
    assert "this page may arrive twice" in page
