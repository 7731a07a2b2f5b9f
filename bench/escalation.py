"""Escalation benchmark: N open incidents with due escalations, ticks every 2 s.

    make bench-escalation ARGS="-n 2000"               # embedded servers, like make run
    python bench/escalation.py -n 2000 --spread 0      # with DATABASE_URL / REDIS_URL set

Creates its own team, schedule (one weekly rotation), service and severity matrix,
then N critical incidents whose first level falls due either all at once
(--spread 0, the worst case: an outage opening N incidents) or evenly over
--spread seconds.  W worker processes (--workers) each behave like a Celery
worker fed by beat: at every 2-second beat they run engine.tick(), back to back
when a tick overruns.  Prints how long the ticks took to process everything and
the lag from each level's due time to its Notification row (p50/p99/max), and
checks that every incident got exactly one round of rows (3 channels).  Removes
its incidents afterwards (audit entries are append-only and stay).
"""

import argparse
import multiprocessing
import os
import sys
import time
from datetime import date, datetime, time as dtime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connections  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.models import Team  # noqa: E402
from apps.escalation import engine, presets  # noqa: E402
from apps.escalation.models import EscalationState  # noqa: E402
from apps.incidents.models import Incident, Service  # noqa: E402
from apps.notifications.models import Notification  # noqa: E402
from apps.schedules.models import Layer, LayerMember, Schedule  # noqa: E402

BEAT = 2.0
EXPIRES = 10.0
BATCH = 500


def setup(n: int, spread: float, start_in: float) -> tuple[Service, datetime]:
    tag = f"bench-esc-{int(time.time())}"
    team = Team.objects.create(name=tag, slug=tag)
    users = [get_user_model().objects.create(username=f"{tag}-{i}") for i in range(3)]
    schedule = Schedule.objects.create(name=tag, team=team, time_zone="Europe/Berlin")
    layer = Layer.objects.create(
        schedule=schedule, name="weekly", shift_unit="weeks", handoff_time=dtime(9), start_date=date(2025, 1, 6)
    )
    for position, user in enumerate(users):
        LayerMember.objects.create(layer=layer, user=user, position=position)
    service = Service.objects.create(team=team, name=tag, slug=tag)
    policies = presets.severity_matrix(service, [{"schedules": [schedule]}, {"users": users[:1]}, {"teams": [team]}])
    now = timezone.now()
    incidents = Incident.objects.bulk_create(
        Incident(
            title=f"bench {i}", severity="critical", service=service, dedup_key=f"{tag}-{i}",
            fingerprint=f"{i:064x}", alert_count=1, first_alert_at=now, last_alert_at=now,
        )
        for i in range(n)
    )
    t0 = now + timedelta(seconds=start_in)
    EscalationState.objects.bulk_create(
        EscalationState(
            incident=inc, policy=policies["critical"], started_at=now,
            next_at=t0 + timedelta(seconds=spread * i / max(n - 1, 1)),
        )
        for i, inc in enumerate(incidents)
    )
    return service, t0


def worker(broker, out) -> None:
    """A Celery worker: takes the next tick message, runs it, repeats."""
    durations = []
    while (sent := broker.get()) is not None:
        if time.time() - sent > EXPIRES:
            continue  # the beat entry's "expires": a stale tick is dropped
        started = time.time()
        processed = engine.tick(batch=BATCH)
        durations.append((started, time.time() - started, processed))
    connections.close_all()
    out.put(durations)


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=2000, help="open incidents with a due escalation")
    parser.add_argument("--spread", type=float, default=0.0, help="seconds over which they fall due (0: all at once)")
    parser.add_argument("--workers", type=int, default=1, help="worker processes ticking")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--keep", action="store_true", help="keep the bench's incidents")
    args = parser.parse_args()

    call_command("migrate", verbosity=0)  # the bench's database may predate new migrations
    service, t0 = setup(args.n, args.spread, start_in=5.0)
    connections.close_all()  # before fork: each worker opens its own connection
    ctx = multiprocessing.get_context("fork")
    broker, out = ctx.Queue(), ctx.Queue()
    global BATCH
    BATCH = args.batch
    procs = [ctx.Process(target=worker, args=(broker, out)) for _ in range(args.workers)]
    for p in procs:
        p.start()
    # Beat: one tick message every 2 s, from the first due time until all is done.
    beat = t0.timestamp()
    pending = EscalationState.objects.filter(incident__service=service, level=0)
    while True:
        time.sleep(max(0.0, beat - time.time()))
        broker.put(time.time())
        beat += BEAT
        if beat > t0.timestamp() + args.spread and not pending.exists():
            break
    connections.close_all()
    for _ in procs:
        broker.put(None)
    ticks = [d for _ in procs for d in out.get()]
    for p in procs:
        p.join()

    rows = list(Notification.objects.filter(incident__service=service).values_list("created_at", "reason", "idempotency_key"))
    lags = sorted(
        (created - datetime.fromisoformat(reason["due_at"])).total_seconds() for created, reason, _ in rows
    )
    first = min(start for start, _, n in ticks if n)
    last = max(start + took for start, took, n in ticks if n)
    busy = [took for _, took, n in ticks if n]
    expected = args.n * 3
    print(f"incidents: {args.n}, due over {args.spread:.0f} s, workers: {args.workers}, batch: {args.batch}, beat: {BEAT:.0f} s")
    print(f"ticks that found work: {len(busy)}; {first - t0.timestamp():+.2f} s after the first due time "
          f"to {last - t0.timestamp():.2f} s; busiest tick {max(busy):.2f} s")
    print(f"processing: {args.n / sum(busy):.0f} escalations/s of tick time ({sum(busy):.2f} s)")
    print(f"lag due -> Notification row: p50 {percentile(lags, 50):.2f} s, p99 {percentile(lags, 99):.2f} s, "
          f"max {lags[-1]:.2f} s")
    ok = len(rows) == expected and len({k for _, _, k in rows}) == expected
    print(f"notification rows: {len(rows)} (expected {expected}): {'OK' if ok else 'MISMATCH'}")
    if not args.keep:
        Incident.objects.filter(service=service).delete()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
