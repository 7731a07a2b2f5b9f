"""Ingestion benchmark: Alertmanager webhooks at a running portal, as fast as it takes them.

    make run                                          # in one terminal
    make bench-ingest ARGS="--group 100"              # grouped payloads
    make bench-ingest ARGS="--group 1"                # single alerts

The load comes from wrk (`apt-get install wrk`): a load generator written in
Python would take one of the machine's cores away from the server it measures.

The bench creates its own service, with every dedup level on: a grouping rule
(alertname, cluster; 30 minutes) and the default similarity threshold, so new
incidents are settled by the worker before they page.  The alerts come from a
storm's worth of distinct label sets (--label-sets, default 2,000: 10 alert names
x 2 clusters x 100 instances, so 20 groups), each request one group's
notification: --group of its alerts (all 100 by default), as Alertmanager
re-sends a group's firing alerts every group_interval.  --new F makes a fraction F of the alerts new label sets that
match no grouping rule (each opens an incident, to be settled): the costly case.
(The warm-up opens the storm's 20 incidents: its alerts/s are not reported.)

Prints alerts/s, request latency percentiles, the CPU each program on this
machine spent per alert while it measured, and a loss check: every alert the
server answered 202 for is in the database (it may hold more: requests still in
flight when wrk stops are stored without being counted), and the incidents'
alert counts add up to the alerts stored.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

from django.db import connection, transaction  # noqa: E402
from django.db.models import Sum  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.models import Team  # noqa: E402
from apps.incidents.models import Alert, GroupingRule, Incident, Service  # noqa: E402
from apps.integrations.services import create_integration, ingestion_url  # noqa: E402

ALERTNAMES = ["LLMLatencyHigh", "TokenErrorsRising", "GPUMemoryPressure", "QueueBacklog", "CacheMissStorm",
              "RateLimited", "UpstreamTimeouts", "PodRestarting", "DiskFilling", "CertExpiring"]

# Each wrk thread cycles through the bodies from its own offset; response() counts
# the answers by status, done() prints them for this script to read.
LUA = r"""
local bodies = {}
for line in io.lines(os.getenv("BENCH_BODIES")) do bodies[#bodies + 1] = line end
local threads = {}
function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end
function init(args)
  i = offset
  statuses = {}
end
function request()
  i = i + 1
  return wrk.format("POST", nil, {["Content-Type"] = "application/json"}, bodies[(i % #bodies) + 1])
end
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
function done(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do totals[status] = (totals[status] or 0) + n end
  end
  for status, n in pairs(totals) do io.write(string.format("status %d %d\n", status, n)) end
  for _, p in ipairs({50, 90, 99}) do io.write(string.format("latency p%d %.3f\n", p, latency:percentile(p) / 1000)) end
end
"""


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """CPU time used so far by each of this machine's processes (Linux /proc): pid
    -> (program, seconds)."""
    tick = os.sysconf("SC_CLK_TCK")
    used = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name, fields = stat.read_text().rsplit(")", 1)
        except OSError:
            continue  # exited meanwhile
        values = fields.split()
        used[int(stat.parent.name)] = name.split("(", 1)[1], (int(values[11]) + int(values[12])) / tick
    return used


class CpuMeter:
    """Where the machine's CPU went while the block ran, by program: read every
    half second, so that a process that exits meanwhile (a database connection's,
    say) is counted up to its last reading.  It says where the alerts' cost went
    when the server runs on this machine."""

    def __enter__(self):
        self.first, self.last = cpu_seconds(), {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        return self

    def _read(self):
        while not self._stop.wait(0.5):
            self.last.update(cpu_seconds())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.last.update(cpu_seconds())

    def by_program(self) -> list[tuple[float, str]]:
        """Seconds spent, by program, most first."""
        spent: dict[str, float] = {}
        for pid, (program, seconds) in self.last.items():
            program = program.split("/")[0]  # kernel threads rename themselves by task
            spent[program] = spent.get(program, 0.0) + seconds - self.first.get(pid, ("", 0.0))[1]
        return sorted(((s, p) for p, s in spent.items()), reverse=True)


def label_sets(n: int) -> list[dict]:
    per_group = max(1, n // (len(ALERTNAMES) * 2))
    return [
        {"alertname": name, "cluster": cluster, "instance": f"llm-{k}:9100", "severity": "high", "job": "bench"}
        for name in ALERTNAMES
        for cluster in ("eu-1", "us-1")
        for k in range(per_group)
    ][:n]


def alert(labels: dict) -> dict:
    return {
        "status": "firing",
        "labels": labels,
        "annotations": {"summary": f"{labels['alertname']} on {labels['instance']} in {labels.get('cluster', 'every cluster')}"},
        "startsAt": "2026-11-25T16:58:23.749310638Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph",
        "fingerprint": hashlib.blake2b(json.dumps(labels, sort_keys=True).encode(), digest_size=8).hexdigest(),
    }


def body(alerts: list[dict]) -> str:
    """One Alertmanager notification: the firing alerts of one group (group_by
    alertname, cluster), as Alertmanager sends them every group_interval."""
    first = alerts[0]["labels"]
    group = {k: first[k] for k in ("alertname", "cluster") if k in first}
    common = {k: v for k, v in first.items() if all(a["labels"].get(k) == v for a in alerts)}
    return json.dumps({
        "receiver": "bench", "status": "firing", "alerts": alerts,
        "groupLabels": group, "commonLabels": common, "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093", "version": "4",
        "groupKey": "{}:{" + ", ".join(f'{k}="{v}"' for k, v in group.items()) + "}", "truncatedAlerts": 0,
    })


def bodies(count: int, group: int, sets: list[dict], new: float, rng: random.Random, stamp: str) -> list[str]:
    groups: dict[tuple, list[dict]] = {}
    for labels in sets:
        groups.setdefault((labels["alertname"], labels["cluster"]), []).append(labels)
    out, fresh = [], 0
    for _ in range(count):
        members = rng.choice(list(groups.values()))
        alerts = []
        for labels in rng.sample(members, min(group, len(members))):
            if rng.random() < new:
                fresh += 1  # no cluster: no grouping rule applies
                labels = {"alertname": f"OneOff{fresh}", "job": "bench", "severity": "high", "instance": f"new-{stamp}"}
            alerts.append(alert(labels))
        out.append(body(alerts))
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", type=int, default=100, help="alerts per request (Alertmanager's group)")
    parser.add_argument("--label-sets", type=int, default=2000, help="distinct label sets the alerts come from")
    parser.add_argument("--new", type=float, default=0.0, help="fraction of alerts that open an incident each")
    parser.add_argument("-c", type=int, default=8, help="connections (requests in flight)")
    parser.add_argument("-d", type=int, default=20, help="seconds of load, measured")
    parser.add_argument("--warmup", type=int, default=10, help="seconds of load before, not measured")
    parser.add_argument("--url", default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/ingest.py needs wrk, a load generator in C: apt-get install wrk")

    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    service = Service.objects.create(team=team, name=f"Bench {stamp}", slug=f"bench-{stamp}")
    GroupingRule.objects.create(service=service, name="alert and cluster", group_by=["alertname", "cluster"])
    integration, token = create_integration(name=f"bench {stamp}", kind="alertmanager", service=service)
    url = args.url.rstrip("/") + urlsplit(ingestion_url(token, "alertmanager")).path

    rng = random.Random(args.seed)
    sets = label_sets(args.label_sets)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "bodies").write_text("\n".join(bodies(2000 if args.group == 1 else 300, args.group, sets, args.new, rng, stamp)))
        (Path(tmp) / "bench.lua").write_text(LUA)

        def wrk(seconds: int) -> tuple[dict[int, int], dict[str, str]]:
            run = subprocess.run(
                ["wrk", "-t", "2", "-c", str(args.c), "-d", f"{seconds}s", "--timeout", "30s", "-s", str(Path(tmp) / "bench.lua"), url],
                env={**os.environ, "BENCH_BODIES": str(Path(tmp) / "bodies")}, capture_output=True, text=True, check=True,
            )
            if "status " not in run.stdout:
                print(f"wrk counted no answers:\n{run.stdout}{run.stderr}", file=sys.stderr)
            return (
                {int(s): int(n) for s, n in re.findall(r"^status (\d+) (\d+)$", run.stdout, re.M)},
                dict(re.findall(r"^latency (p\d+) ([\d.]+)$", run.stdout, re.M)),
            )

        # The storm's first seconds open its incidents, which the worker then settles
        # (embeds, compares) on the same cores: measured apart from the steady state.
        warmup, _ = wrk(args.warmup) if args.warmup else ({}, {})
        with CpuMeter() as cpu:
            statuses, latency = wrk(args.d)
    accepted = (statuses.get(202, 0) + warmup.get(202, 0)) * args.group
    with transaction.atomic():  # one snapshot, whatever requests wrk left in flight
        connection.cursor().execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        stored = Alert.objects.filter(integration=integration).count()
        counted = Incident.objects.filter(service=service).aggregate(n=Sum("alert_count"))["n"] or 0
        incidents = Incident.objects.filter(service=service).count()
    print(f"alerts           {args.group} per request, {args.c} connections, {args.d} s after {args.warmup} s of warm-up, "
          f"new label sets {args.new:.0%}")
    print(f"answers          {dict(sorted(statuses.items()))} (warm-up {dict(sorted(warmup.items()))})")
    print(f"throughput       {statuses.get(202, 0) * args.group / args.d:,.0f} alerts/s accepted "
          f"({statuses.get(202, 0) / args.d:,.0f} requests/s)")
    print(f"request latency  p50 {latency.get('p50')} ms   p90 {latency.get('p90')} ms   p99 {latency.get('p99')} ms")
    measured = statuses.get(202, 0) * args.group
    if measured:
        print("cpu per alert    " + ", ".join(f"{p} {s / measured * 1e6:.0f} µs" for s, p in cpu.by_program()[:5]))
    ok = stored >= accepted and counted == stored and set(statuses) | set(warmup) == {202}
    print(f"loss check       {'OK' if ok else 'FAILED'}: {stored} stored, {accepted} answered 202; "
          f"{incidents} incidents, alert_count total {counted}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
