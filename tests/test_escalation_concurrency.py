"""Nothing lost, nothing doubled: concurrent ticks, a tick failing mid-way, and a
worker process killed (SIGKILL) mid-tick, on the real PostgreSQL and Redis.

Faults are injected through the database only (a trigger on the outbox table),
never by patching project code.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.escalation import engine, presets
from apps.escalation.models import EscalationState
from apps.notifications.models import Notification

from .conftest import process_env
from .factories import IncidentFactory, ServiceFactory

ROOT = Path(__file__).resolve().parent.parent
LOCK_KEY = 424242


def make_due_incidents(n: int, *, users: int = 1):
    """n critical incidents whose first level is due now, one second apart (so the
    ticks take them in a known order); each level pages `users` people x 3 channels."""
    people = [get_user_model().objects.create(username=f"oncall{i}") for i in range(users)]
    service = ServiceFactory()
    presets.severity_matrix(service, [{"users": people}, {"users": people}])
    now = timezone.now()
    incidents = [IncidentFactory(service=service, severity="critical") for _ in range(n)]
    policy = service.escalation_policies.get(severities=["critical"])
    EscalationState.objects.bulk_create(
        EscalationState(incident=inc, policy=policy, next_at=now - timedelta(seconds=n - i), started_at=now)
        for i, inc in enumerate(incidents)
    )
    return incidents


def assert_each_fired_once(incidents, *, per_level: int = 3):
    assert Notification.objects.count() == len(incidents) * per_level
    notified = AuditEntry.objects.filter(verb="escalation.notified")
    assert notified.count() == len(incidents)
    assert set(notified.values_list("incident_id", flat=True)) == {i.pk for i in incidents}
    assert set(EscalationState.objects.values_list("level", flat=True)) == {1}


def outbox_trigger(body: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            CREATE OR REPLACE FUNCTION test_outbox_fault() RETURNS trigger AS $$
            BEGIN {body} RETURN NEW; END $$ LANGUAGE plpgsql;
            CREATE TRIGGER test_outbox_fault BEFORE INSERT ON integrations_notification
                FOR EACH ROW EXECUTE FUNCTION test_outbox_fault();
            """
        )


def drop_outbox_trigger() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TRIGGER IF EXISTS test_outbox_fault ON integrations_notification")


@pytest.mark.django_db(transaction=True)
def test_concurrent_ticks_never_notify_twice():
    incidents = make_due_incidents(120)
    start = threading.Barrier(4)
    counts = []

    def run():
        try:
            start.wait()
            counts.append(engine.tick(batch=7))
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(counts) == 120  # every state taken by exactly one tick
    assert_each_fired_once(incidents)


@pytest.mark.django_db
def test_a_state_that_fails_mid_round_leaves_no_half_state_and_holds_up_no_other():
    incidents = make_due_incidents(12)
    poison = incidents[5]
    outbox_trigger(f"IF NEW.incident_id = {poison.pk} THEN RAISE EXCEPTION 'outbox down for this one'; END IF;")
    before = EscalationState.objects.get(incident=poison)

    assert engine.tick(batch=5) == 12
    state = EscalationState.objects.get(incident=poison)
    assert (state.level, state.next_at, state.cycle) == (0, before.next_at, 0)  # untouched, still due
    assert not Notification.objects.filter(incident=poison).exists()
    assert not AuditEntry.objects.filter(incident=poison).exists()
    assert Notification.objects.count() == 11 * 3

    drop_outbox_trigger()
    assert engine.tick() == 1
    assert_each_fired_once(incidents)


def start_worker(queue: str) -> subprocess.Popen:
    # solo pool: the task runs in this very process, so SIGKILL kills the tick itself.
    return subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "incident_manager", "worker", "--pool", "solo", "-Q", queue,
         "-l", "warning", "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=process_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def raw_connection() -> psycopg.Connection:
    params = connection.get_connection_params()
    keep = {k: params[k] for k in ("dbname", "user", "host", "port", "password") if params.get(k)}
    return psycopg.connect(**keep, autocommit=True)


def blocked_backend(conn) -> int | None:
    row = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'"
    ).fetchone()
    return row and row[0]


def backend_alive(conn, pid) -> bool:
    return conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone() is not None


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_tick_loses_nothing_and_its_successor_doubles_nothing():
    from apps.escalation.tasks import tick

    incidents = make_due_incidents(30)
    stuck = incidents[15]  # in the second batch of 10
    queue = f"esc-kill-{os.getpid()}"
    holder = raw_connection()
    holder.execute("SELECT pg_advisory_lock(%s)", [LOCK_KEY])
    # The worker's second round blocks inside its transaction, after the first round committed.
    outbox_trigger(f"IF NEW.incident_id = {stuck.pk} THEN PERFORM pg_advisory_xact_lock({LOCK_KEY}); END IF;")
    worker = successor = None
    try:
        worker = start_worker(queue)
        tick.apply_async(kwargs={"batch": 10}, queue=queue)
        pid = wait_for(lambda: blocked_backend(holder), 30, "the tick to block mid-way")
        assert Notification.objects.count() == 10 * 3  # round one committed

        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
        # PostgreSQL notices the dead client once the statement can go on: it then
        # rolls the round back.  (Without the release it would wait for the lock.)
        holder.execute("SELECT pg_advisory_unlock(%s)", [LOCK_KEY])
        wait_for(lambda: not backend_alive(holder, pid), 15, "the dead worker's transaction to end")

        assert Notification.objects.count() == 10 * 3  # nothing of round two
        levels = list(EscalationState.objects.order_by("incident_id").values_list("level", flat=True))
        assert levels == [1] * 10 + [0] * 20  # round two not half-applied: still due
        assert AuditEntry.objects.filter(verb="escalation.notified").count() == 10

        drop_outbox_trigger()
        successor = start_worker(queue)
        tick.apply_async(kwargs={"batch": 10}, queue=queue)
        wait_for(lambda: not EscalationState.objects.filter(level=0).exists(), 30, "the new worker's tick")
        assert_each_fired_once(incidents)
    finally:
        drop_outbox_trigger()
        for proc in (worker, successor):
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        holder.close()


@pytest.mark.django_db(transaction=True)
def test_tick_never_waits_for_an_incident_being_acknowledged():
    """acknowledge() locks the incident, then its escalation state; the tick holds
    states.  Were the tick to wait for the incident, the two would deadlock: it
    leaves that incident to the next tick instead and goes on with the others."""
    incidents = make_due_incidents(5)
    busy = incidents[2]
    holder = raw_connection()
    try:
        with holder.transaction():
            holder.execute("SELECT 1 FROM incidents_incident WHERE id = %s FOR UPDATE", [busy.pk])
            started = time.monotonic()
            assert engine.tick() == 4
            assert time.monotonic() - started < 5
            assert not Notification.objects.filter(incident=busy).exists()
        assert engine.tick() == 1
        assert_each_fired_once(incidents)
    finally:
        holder.close()


def test_beat_runs_the_tick_task_every_2_seconds(celery_worker):
    from apps.escalation.tasks import tick

    entry = settings.CELERY_BEAT_SCHEDULE["escalation-tick"]
    assert (entry["task"], entry["schedule"]) == (tick.name, 2.0)
    incidents = make_due_incidents(3)
    tick.delay()  # what beat sends
    wait_for(lambda: not EscalationState.objects.filter(level=0).exists(), 20, "the worker's tick")
    assert_each_fired_once(incidents)
