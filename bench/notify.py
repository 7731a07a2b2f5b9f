"""Notification latency: from an alert POST to the fake Slack receiving chat.postMessage.

    make bench-notify                 # or:
    python -m incident_manager.devstack exec .venv/bin/python bench/notify.py -n 500 -c 4

Starts its own web server (gunicorn, sync workers, as `make run`) and real Celery
workers as `make run` lays them out (a prefork worker on the default queue, a
thread-pool worker on the notify queue), all pointed at a local fake of
slack.com/api (SLACK_API_URL) that this script serves; creates a service linked
to a Slack channel; opens a few warm-up incidents and waits for their messages
(each worker process's first settle loads the embedding model); then POSTs N alerts, each opening a new
incident, C at a time.  For each incident it measures the time from just before
its alert POST to the moment the fake Slack received the chat.postMessage for
it, and prints p50/p90/p99/max, split at the moment the announcement row was
written (POST -> row: ingest and the settle task; row -> post: delivery), plus a
loss check (every incident's message arrived exactly once).
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

from incident_manager.devstack import NOTIFY_THREADS  # noqa: E402  (the same layout as make run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class FakeSlack:
    """chat.postMessage / chat.update; records when each incident's post arrived."""

    NUMBER = re.compile(r"^#(\d+) ")

    def __init__(self):
        self.arrivals: dict[int, list[float]] = {}
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                data = json.loads(body) if body.startswith(b"{") else {}
                if self.path.endswith("chat.postMessage") and "thread_ts" not in data:
                    match = fake.NUMBER.match(data.get("text", ""))
                    if match:
                        with fake.lock:
                            fake.arrivals.setdefault(int(match.group(1)), []).append(arrived)
                raw = json.dumps({"ok": True, "channel": data.get("channel"), "ts": f"{time.time():.6f}"}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def alert_body(n: int, stamp: str) -> bytes:
    return json.dumps(
        {
            "receiver": "bench", "status": "firing", "version": "4", "groupKey": "bench",
            "alerts": [{
                "status": "firing",
                "labels": {"alertname": "BenchNotify", "instance": f"llm-{n}", "run": stamp, "severity": "critical"},
                "annotations": {"summary": f"bench incident {n}"},
                "startsAt": "2026-11-25T16:58:23Z", "endsAt": "0001-01-01T00:00:00Z",
                "fingerprint": f"{stamp}-{n}",
            }],
        }
    ).encode()


async def fire(base: str, path: str, n: int, concurrency: int, stamp: str, rate: float | None):
    """POST n alerts, at most `concurrency` in flight; with `rate`, open-loop: alert i
    is sent at i/rate seconds (or as soon as a slot frees up), as a storm would arrive."""
    import httpx

    sent: dict[int, float] = {}
    failures: dict[str, int] = {}
    queue = iter(range(n))
    began = time.time()
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def worker():
            for i in queue:
                if rate:
                    await asyncio.sleep(max(0.0, began + i / rate - time.time()))
                start = time.time()
                response = await client.post(path, content=alert_body(i, stamp), headers={"Content-Type": "application/json"})
                if response.status_code != 202:
                    failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1
                    continue
                sent[response.json()["alerts"][0]["incident_number"]] = start

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent, failures


def warm_up(base: str, path: str, stamp: str, fake: FakeSlack, count: int, timeout: float = 180) -> None:
    """Open `count` incidents at once and wait for their messages: each worker process's
    first settle loads the embedding model (seconds), which no measured incident should
    be charged for.  Several at once, so that every prefork process gets one."""
    import httpx

    numbers = []
    with httpx.Client(base_url=base, timeout=30) as client:
        for i in range(count):
            response = client.post(path, content=alert_body(-1 - i, f"{stamp}-warm-up"),
                                   headers={"Content-Type": "application/json"})
            numbers.append(response.json()["alerts"][0]["incident_number"])
    deadline = time.monotonic() + timeout
    while not all(number in fake.arrivals for number in numbers):
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up incidents were not posted")
        time.sleep(0.1)
    for number in numbers:
        fake.arrivals.pop(number)


def purge_queues() -> None:
    """Drop tasks an interrupted earlier run left in the broker (its Redis keeps them),
    which the workers would otherwise work through before this run's."""
    from django.conf import settings

    from incident_manager.celery import app

    with app.connection_for_write() as connection:
        for name in (app.conf.task_default_queue, settings.NOTIFY_QUEUE):
            connection.default_channel.queue_purge(name)


def wait_http(url: str, timeout: float = 30) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=500, help="incidents to open")
    parser.add_argument("-c", type=int, default=4, help="alert POSTs in flight")
    parser.add_argument("--rate", type=float, default=None, help="alerts per second (default: as fast as possible)")
    parser.add_argument("--worker-concurrency", type=int, default=2, help="prefork processes on the default queue")
    parser.add_argument("--notify-threads", type=int, default=NOTIFY_THREADS,
                        help="threads of the delivery worker (0: no delivery worker; the prefork worker also "
                        "serves the notify queue, the layout before it had one)")
    args = parser.parse_args()

    fake = FakeSlack()
    os.environ["SLACK_API_URL"] = fake.url  # for this process and the servers it starts
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.utils import timezone

    from apps.accounts.models import Team
    from apps.incidents.models import Service
    from apps.notifications.models import Notification, SlackChannelLink, SlackWorkspace
    from apps.integrations.services import create_integration, ingestion_url

    call_command("migrate", verbosity=0)
    purge_queues()
    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    # The bench's incidents differ only in a number, which similarity ignores: with it
    # on they would merge into the first.  They are distinct by construction, so it is
    # off (settle still embeds each one).
    service = Service.objects.create(
        team=team, name=f"Notify bench {stamp}", slug=f"notify-bench-{stamp}", similarity_threshold=1.0
    )
    workspace = SlackWorkspace(team_id=f"TB{stamp[-10:]}", name="Bench")
    workspace.bot_token, workspace.signing_secret = "xoxb-bench", "bench-secret"
    workspace.save()
    SlackChannelLink.objects.create(service=service, workspace=workspace, channel_id="CBENCH")
    _, token = create_integration(name=f"notify bench {stamp}", kind="alertmanager", service=service)
    path = urlsplit(ingestion_url(token, "alertmanager")).path

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "4")}
    celery = [str(bin_dir / "celery"), "-A", "incident_manager", "worker", "-l", os.environ.get("BENCH_WORKER_LOG", "warning")]
    queues = "celery" if args.notify_threads else f"celery,{settings.NOTIFY_QUEUE}"
    procs = [
        subprocess.Popen(
            [str(bin_dir / "gunicorn"), "incident_manager.wsgi", "-c", "deploy/gunicorn.conf.py", "-b", f"127.0.0.1:{port}"],
            cwd=ROOT, env=env, start_new_session=True,
        ),
        subprocess.Popen(
            [*celery, "--concurrency", str(args.worker_concurrency), "-Q", queues, "-n", f"bench-{stamp}@%h"],
            cwd=ROOT, env=env, start_new_session=True,
        ),
    ]
    if args.notify_threads:
        procs.append(subprocess.Popen(
            [*celery, "--pool", "threads", "--concurrency", str(args.notify_threads), "-Q", settings.NOTIFY_QUEUE,
             "-n", f"bench-notify-{stamp}@%h"],
            cwd=ROOT, env=env, start_new_session=True,
        ))
    try:
        wait_http(base + "/healthz")
        warm_up(base, path, stamp, fake, count=4 * args.worker_concurrency)
        started = time.perf_counter()
        sent, failures = asyncio.run(fire(base, path, args.n, args.c, stamp, args.rate))
        elapsed = time.perf_counter() - started
        # Wait for every message, as long as they keep coming (a slow drain is measured,
        # not cut off); give up after 30 s without progress.
        seen, quiet_since = 0, time.monotonic()
        while (arrived := len(set(sent) & set(fake.arrivals))) < len(sent) and time.monotonic() - quiet_since < 30:
            if arrived > seen:
                seen, quiet_since = arrived, time.monotonic()
            time.sleep(0.05)
    finally:
        # The main processes only: they stop their children after the tasks in hand
        # (a signal to the whole group killed pool processes mid-task).
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)

    latencies = sorted(fake.arrivals[number][0] - start for number, start in sent.items() if number in fake.arrivals)
    # When each incident's announcement row was written: the split between ingest plus
    # settle (before) and delivery (after).
    written = dict(
        Notification.objects.filter(incident__service=service, channel="slack").values_list("incident__number", "created_at")
    )
    to_row = sorted(written[number].timestamp() - start for number, start in sent.items() if number in written)
    to_post = sorted(fake.arrivals[number][0] - written[number].timestamp()
                     for number in sent if number in written and number in fake.arrivals)
    duplicates = sum(len(fake.arrivals.get(number, [])) > 1 for number in sent)
    missing = len(sent) - len(latencies)
    if len(latencies) < 2:
        print("not enough deliveries to measure", file=sys.stderr)
        return 1
    pace = f"paced at {args.rate:g}/s" if args.rate else "unpaced"
    layout = f"{args.notify_threads} delivery threads" if args.notify_threads else "delivery on the same worker"
    print(f"incidents opened  {len(sent)} ({pace}, up to {args.c} POSTs in flight, {len(sent) / elapsed:,.0f}/s); "
          f"worker processes {args.worker_concurrency}, {layout}; failures {failures or 0}")
    for label, values in (("POST → chat.postMessage", latencies), ("POST → announcement row", to_row),
                          ("row → chat.postMessage", to_post)):
        if len(values) >= 2:
            q = statistics.quantiles(values, n=100, method="inclusive")
            print(f"{label:<24} p50 {q[49] * 1000:6.0f} ms   p90 {q[89] * 1000:6.0f} ms   "
                  f"p99 {q[98] * 1000:6.0f} ms   max {values[-1] * 1000:6.0f} ms")
    ok = not missing and not duplicates and not failures
    print(f"delivery check    {'OK' if ok else 'FAILED'}: {len(latencies)} posted of {len(sent)}, "
          f"{missing} missing, {duplicates} posted more than once")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
