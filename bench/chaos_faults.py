"""The faults of a chaos run (bench/chaos.py), each aimed so that it lands where it hurts:
a gunicorn worker killed while it serves a webhook POST, the prefork worker while its
escalation tick is inside its transaction, the delivery worker while the providers hold
its sends; PostgreSQL restarted, Redis stopped, beat killed.

Every fault returns an Outcome: when it began, when what it broke was back (the
supervisor restarts a killed process RESTART_DELAY seconds after its death; recovery is
when it serves again), and what the blow landed on, which the score needs (duplicates
are bounded by the sends a kill interrupted).
"""

import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field

from chaos_stack import pid_holding, wait_until


@dataclass
class Outcome:
    name: str
    title: str
    started: float = field(default_factory=time.time)
    recovered: float | None = None
    landed: list[str] = field(default_factory=list)  # what each blow hit
    mid_delivery_kills: int = 0  # kills of a delivery worker with sends in flight
    interrupted_sends: int = 0  # sends in flight that those kills cut (the providers had them)


# ----- gunicorn ---------------------------------------------------------------------------------


def _busy_web_worker(run, web, timeout: float):
    """(pid, webhook record) of a gunicorn worker of `web` serving a webhook POST right now."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with run.tap.lock:
            flights = [r for r in run.tap.in_flight.values() if r.upstream == web.port and time.time() - r.started > 0.005]
        for record in flights:
            pid = pid_holding(record.upstream, record.local_port, web.proc.children())
            if pid:
                return pid, record
        time.sleep(0.002)
    return None, None


def _describe_cut(record, what: str) -> str:
    wait_until(lambda: record.ended, 90, 0.05, "the cut request to end")
    if record.status is None:
        return f"{what} while it served a webhook POST of {len(record.alerts)} alerts: the connection broke (502 to Alertmanager, which retries)"
    return f"{what} while it served a webhook POST of {len(record.alerts)} alerts, which it answered {record.status} just before dying"


def kill_gunicorn_worker(run) -> Outcome:
    """SIGKILL one gunicorn worker mid-request; its master forks a new one at once."""
    out = Outcome("gunicorn", "SIGKILL a gunicorn worker mid-request")
    web = run.webs[0]
    pid, record = _busy_web_worker(run, web, timeout=30)
    if pid is None:
        pid = random.choice(web.proc.children())
        out.landed.append(f"worker {pid} killed with no webhook POST in flight (none caught in 30 s)")
    out.started = time.time()
    os.kill(pid, signal.SIGKILL)
    if record:
        out.landed.append(_describe_cut(record, f"worker {pid} killed"))
    wait_until(lambda: len(web.proc.children()) >= web.workers and pid not in web.proc.children(), 60, 0.1,
               "gunicorn to replace its worker")
    wait_until(web.healthy, 60, 0.2, "gunicorn to answer")
    out.recovered = time.time()
    return out


def kill_web_instance(run) -> Outcome:
    """Two web instances: SIGKILL all of one (master and workers) mid-request; the load
    balancer sends to the other until the supervisor has it back."""
    out = Outcome("gunicorn", "SIGKILL web instance a (master and workers) mid-request")
    web = run.webs[0]
    pid, record = _busy_web_worker(run, web, timeout=30)
    out.started = time.time()
    web.proc.kill_group()
    if record:
        out.landed.append(_describe_cut(record, f"instance a (worker {pid})"))
    else:
        out.landed.append("instance a killed with no webhook POST in flight (none caught in 30 s)")
    out.recovered = _wait_restarted(web.proc, out.started)
    return out


def _wait_restarted(proc, killed_at: float, timeout: float = 180) -> float:
    """When the supervisor's new process serves (its ready mark, after the kill)."""
    wait_until(lambda: proc.started_at > killed_at and proc.is_ready(), timeout, 0.1, f"{proc.name} to come back")
    return proc.ready_at


# ----- the prefork worker, mid-tick ---------------------------------------------------------------


class TickHold(threading.Thread):
    """Holds the next escalation tick inside its transaction.

    It picks the next levels to fall due (not those of incidents the acker will take)
    and, a second before the first of them, inserts in a transaction it keeps open one
    Notification row with each idempotency key the tick is about to write for them.
    The tick's INSERT … ON CONFLICT DO NOTHING then waits for this transaction: the tick
    is mid-transaction, holding its states' row locks, and a kill lands inside it for
    certain.  The transaction is rolled back after the kill, so the rows never existed
    for anyone else.  (Their foreign keys take KEY SHARE locks on those incidents: an
    acknowledge or resolve of one of them waits the second or two the hold lasts.)
    """

    def __init__(self, run, horizon: float = 60.0, spread: float = 4.0):
        super().__init__(daemon=True, name="tick-hold")
        self.run_, self.horizon, self.spread = run, horizon, spread
        self.keys: list[str] = []
        self.due_at: float | None = None  # the first held level's due time
        self.ready = threading.Event()
        self.done = threading.Event()
        self.error: Exception | None = None

    def run(self) -> None:
        from django.db import connection, transaction

        try:
            levels = self._next_levels()
            if levels:
                self.due_at = levels[0][0]
                time.sleep(max(0.0, self.due_at - 1.0 - time.time()))
                with transaction.atomic():
                    self.keys = self._insert(levels)
                    self.ready.set()
                    self.done.wait(60)
                    transaction.set_rollback(True)
        except Exception as exc:  # noqa: BLE001 - reported by the fault
            self.error = exc
        finally:
            self.ready.set()
            connection.close()

    def release(self) -> None:
        self.done.set()
        self.join(30)

    def _next_levels(self) -> list[tuple[float, int, list[str]]]:
        """(due time, incident, keys) of the levels falling due first, within `spread` of each other."""
        from datetime import timedelta

        from django.utils import timezone

        from apps.escalation.engine import notification_key
        from apps.escalation.models import EscalationRule, EscalationState

        now = timezone.now()
        states = [s for s in EscalationState.objects.filter(
            status="active", incident__status="triggered", incident__settling=False,
            next_at__gt=now + timedelta(seconds=1.5), next_at__lt=now + timedelta(seconds=self.horizon),
        ).order_by("next_at")[:30] if s.incident_id % self.run_.acker.every]
        levels = []
        for state in states:
            if levels and state.next_at.timestamp() > levels[0][0] + self.spread:
                break
            rule = EscalationRule.objects.filter(policy_id=state.policy_id, position=state.level).first()
            if rule is None:
                continue
            users = {u.pk for u in rule.users.all()} | {m.pk for t in rule.teams.all() for m in t.members.all()}
            keys = [notification_key(state.incident_id, state.cycle, state.level, user, channel)
                    for user in sorted(users) for channel in rule.channels]
            levels.append((state.next_at.timestamp(), state.incident_id, keys))
        return levels

    def _insert(self, levels) -> list[str]:
        from apps.notifications.models import Notification

        keys = []
        for _due, incident, level_keys in levels:
            for key in level_keys:
                user, channel = key.split(":")[4:6]
                Notification.objects.create(incident_id=incident, recipient_id=int(user), channel=channel,
                                            idempotency_key=key, reason={"chaos": "holds the tick"})
                keys.append(key)
        return keys


def _held_tick(run, timeout: float):
    """The application name of a Celery worker whose tick waits on our rows, if any, within `timeout`."""
    import psycopg

    deadline = time.monotonic() + timeout
    with psycopg.connect(run.pg.conninfo(), autocommit=True) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE application_name LIKE 'chaos-worker-%%' "
                "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO \"integrations_notification\"%%' LIMIT 1"
            ).fetchone()
            if row:
                return row[0]
            time.sleep(0.02)
    return None


def kill_prefork_mid_tick(run) -> Outcome:
    out = Outcome("prefork", "SIGKILL the prefork worker mid-tick")
    for _attempt in range(3):
        hold = TickHold(run)
        hold.start()
        hold.ready.wait(90)
        if hold.error or not hold.keys:
            if hold.error:
                out.landed.append(f"(the hold failed: {hold.error})")
            hold.release()
            time.sleep(2)
            continue
        holder = _held_tick(run, timeout=max(0.0, hold.due_at - time.time()) + 8)
        if holder:
            proc = run.supervisor.by_name(holder.removeprefix("chaos-"))
            out.started = time.time()
            proc.kill_group()
            hold.release()
            out.landed.append(f"{proc.name} killed while its tick was inside its transaction (its INSERT of the "
                              f"Notification rows waiting on {len(hold.keys)} held keys); the round rolls back")
            out.recovered = _wait_restarted(proc, out.started)
            return out
        hold.release()
    proc = run.supervisor.by_name("worker-a")
    out.started = time.time()
    proc.kill_group()
    out.landed.append("worker-a killed, but no tick was caught mid-transaction (no level fell due under the hold)")
    out.recovered = _wait_restarted(proc, out.started)
    return out


# ----- the delivery worker, mid-send -----------------------------------------------------------------


def _held_sends_of(run, pid: int) -> list:
    return [r for fake in (run.slack, run.twilio) for r in fake.held_now()
            if pid_holding(r.client_port, fake.port, [pid]) == pid]


def _hold_sends(run, proc, fakes, timeout: float) -> list:
    """Hold the answers of `fakes` until `proc` has sends in flight to them; returns those
    in flight.  (Only the held provider's sends wait: the rest of delivery goes on.)"""
    for fake in fakes:
        fake.hold()
    deadline = time.monotonic() + timeout
    while not _held_sends_of(run, proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.3)  # the rest of the burst its threads are sending
    return _held_sends_of(run, proc.pid)


def _release_sends(run) -> None:
    run.slack.release()
    run.twilio.release()


def _describe_sends(held) -> str:
    kinds = {}
    for r in held:
        kind = f"{r.provider} {r.method}{' (DM)' if r.to.startswith('U') else ''}"
        kinds[kind] = kinds.get(kind, 0) + 1
    return ", ".join(f"{n} {k}" for k, n in sorted(kinds.items()))


def kill_notify_mid_delivery(run) -> Outcome:
    out = Outcome("notify", "SIGKILL the notify worker mid-delivery")
    proc = run.supervisor.by_name("notify-a")
    # Twilio's sends: Slack's can be looked up after a crash, an SMS or a call cannot, so
    # this is where a duplicate is possible.  Every level pages by Twilio too.
    held = _hold_sends(run, proc, [run.twilio], timeout=45)
    out.started = time.time()
    proc.kill_group()
    _release_sends(run)
    if held:
        out.mid_delivery_kills, out.interrupted_sends = 1, len(held)
        out.landed.append(f"notify-a killed with {len(held)} sends in flight, taken by the providers but not "
                          f"answered: {_describe_sends(held)}")
    else:
        out.landed.append("notify-a killed with no send in flight (none caught in 45 s)")
    out.recovered = _wait_restarted(proc, out.started)
    return out


# ----- the servers, and beat --------------------------------------------------------------------------


def restart_postgres(run) -> Outcome:
    out = Outcome("postgres", "restart PostgreSQL (pg_ctl restart -m fast)")
    import psycopg

    with psycopg.connect(run.pg.conninfo(), autocommit=True) as conn:
        backends = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name LIKE 'chaos-%%' "
                                "AND application_name <> 'chaos-harness'").fetchone()[0]
    out.started = time.time()
    took = run.pg.restart()
    out.recovered = time.time()
    out.landed.append(f"{backends} connections of the portal's processes cut; the server took {took:.1f} s to accept again")
    return out


def stop_redis(run, seconds: float = 30.0) -> Outcome:
    out = Outcome("redis", f"stop Redis for {seconds:.0f} s")
    out.started = time.time()
    run.redis.stop()
    out.landed.append(f"redis-server stopped (SIGTERM: its append-only file is flushed) for {seconds:.0f} s")
    time.sleep(max(0.0, out.started + seconds - time.time()))
    run.redis.start()
    out.recovered = time.time()
    return out


def kill_beat(run) -> Outcome:
    out = Outcome("beat", "SIGKILL beat")
    proc = run.supervisor.by_name("beat-a")
    out.started = time.time()
    proc.kill_group()
    out.landed.append("beat-a killed: no tick, due-delivery sweep or settle sweep is sent until it is back")
    out.recovered = _wait_restarted(proc, out.started)
    return out


# ----- all at once ---------------------------------------------------------------------------------


def all_together(run, redis_seconds: float = 30.0) -> Outcome:
    """Every blow at the same moment: a gunicorn worker (or web instance a), the prefork
    worker, the notify worker mid-delivery, beat, a PostgreSQL restart and Redis stopped
    for 30 s."""
    out = Outcome("together", "all of them at once")
    notify = run.supervisor.by_name("notify-a")
    held = _hold_sends(run, notify, [run.slack, run.twilio], timeout=45)
    web = run.webs[0]
    victims = [run.supervisor.by_name(n) for n in ("worker-a", "beat-a")]
    out.started = time.time()
    notify.kill_group()
    for proc in victims:
        proc.kill_group()
    if run.instances > 1:
        web.proc.kill_group()
        victims.append(web.proc)
        out.landed.append("web instance a killed")
    elif children := web.proc.children():
        os.kill(random.choice(children), signal.SIGKILL)
        out.landed.append("a gunicorn worker killed")
    _release_sends(run)
    if held:
        out.mid_delivery_kills, out.interrupted_sends = 1, len(held)
        out.landed.append(f"notify-a killed with {len(held)} sends in flight: {_describe_sends(held)}")
    out.landed.append("worker-a and beat-a killed (the worker not aimed at a tick)")
    restarted = threading.Thread(target=run.pg.restart, daemon=True)
    restarted.start()
    run.redis.stop()
    out.landed.append(f"PostgreSQL restarted and Redis stopped for {redis_seconds:.0f} s")
    restarted.join(120)
    time.sleep(max(0.0, out.started + redis_seconds - time.time()))
    run.redis.start()
    back = [time.time(), *(_wait_restarted(proc, out.started) for proc in [notify, *victims])]
    wait_until(web.healthy, 60, 0.2, "gunicorn to answer")
    out.recovered = max(*back, time.time() if run.instances == 1 else 0.0)
    return out


IN_TURN = {
    "gunicorn": kill_gunicorn_worker,
    "prefork": kill_prefork_mid_tick,
    "notify": kill_notify_mid_delivery,
    "postgres": restart_postgres,
    "redis": stop_redis,
    "beat": kill_beat,
}
