"""Ingestion benchmark: N Alertmanager alerts at a running portal, C at a time.

    make run                                   # in one terminal
    make bench-ingest ARGS="-n 5000 -c 32"     # in another

Half the alerts are new label sets (each opens an incident), half repeat an
earlier one (deduplicated into its incident).  By default each request carries
one alert, the worst case for per-request overhead; --group G sends G alerts per
request, as Alertmanager does for a group.  Prints alerts/s, latency percentiles,
and a loss check: every alert the server accepted (202) must be in the database,
and the incidents' alert counts must add up.  The bench creates its own service
and integration, so it never touches other data.
"""

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.models import Team  # noqa: E402
from apps.incidents.models import Alert, Incident, Service  # noqa: E402
from apps.integrations.services import create_integration, ingestion_url  # noqa: E402


def alert(n: int) -> dict:
    return {
        "status": "firing",
        "labels": {"alertname": "BenchLatencyHigh", "instance": f"llm-{n}:9100", "severity": "high", "job": "bench"},
        "annotations": {"summary": f"p95 latency 2.4x baseline on llm-{n}"},
        "startsAt": "2026-11-25T16:58:23.749310638Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example.org:9090/graph",
        "fingerprint": f"{n:016x}",
    }


def alert_body(label_sets: list[int]) -> bytes:
    return json.dumps(
        {
            "receiver": "bench",
            "status": "firing",
            "alerts": [alert(n) for n in label_sets],
            "groupLabels": {"alertname": "BenchLatencyHigh"},
            "commonLabels": {"alertname": "BenchLatencyHigh", "severity": "high", "job": "bench"},
            "commonAnnotations": {},
            "externalURL": "http://127.0.0.1:9093",
            "version": "4",
            "groupKey": '{}:{alertname="BenchLatencyHigh"}',
            "truncatedAlerts": 0,
        }
    ).encode()


async def fire(base: str, path: str, n: int, concurrency: int, group: int, seed: int):
    rng = random.Random(seed)
    # Half new label sets, half repeats of one seen before; a group never holds the
    # same label set twice (Alertmanager's never does).
    plan = []
    for i in range(n):
        plan.append(i if (i == 0 or rng.random() < 0.5) else rng.choice(plan))
    batches = []
    for start in range(0, n, group):
        batch = list(dict.fromkeys(plan[start : start + group]))
        batches.append(batch)
    latencies: list[float] = []
    accepted: list[int] = []
    failures: dict[str, int] = {}
    queue = iter(batches)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:

        async def worker():
            for batch in queue:
                body = alert_body(batch)
                start = time.perf_counter()
                try:
                    response = await client.post(path, content=body, headers={"Content-Type": "application/json"})
                except httpx.HTTPError as exc:
                    failures[type(exc).__name__] = failures.get(type(exc).__name__, 0) + 1
                    continue
                latencies.append(time.perf_counter() - start)
                if response.status_code == 202:
                    accepted.extend(a["alert"] for a in response.json()["alerts"])
                else:
                    failures[str(response.status_code)] = failures.get(str(response.status_code), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    sent = sum(len(batch) for batch in batches)
    return plan, sent, latencies, accepted, failures, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=5000, help="alerts to send")
    parser.add_argument("-c", type=int, default=32, help="requests in flight")
    parser.add_argument("--group", type=int, default=1, help="alerts per request")
    parser.add_argument("--url", default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    stamp = timezone.now().strftime("%Y%m%d%H%M%S%f")
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    service = Service.objects.create(team=team, name=f"Bench {stamp}", slug=f"bench-{stamp}")
    integration, token = create_integration(name=f"bench {stamp}", kind="alertmanager", service=service)
    path = urlsplit(ingestion_url(token, "alertmanager")).path

    plan, sent, latencies, accepted, failures, elapsed = asyncio.run(
        fire(args.url, path, args.n, args.c, args.group, args.seed)
    )

    latencies.sort()
    q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    stored = set(Alert.objects.filter(integration=integration).values_list("pk", flat=True))
    missing = set(accepted) - stored
    counted = sum(Incident.objects.filter(service=service).values_list("alert_count", flat=True))
    incidents = Incident.objects.filter(service=service).count()
    print(f"alerts sent      {sent} in {len(latencies)} requests of up to {args.group} "
          f"(concurrency {args.c}, {len(set(plan))} distinct label sets)")
    print(f"accepted (202)   {len(accepted)}   failures {failures or 0}")
    print(f"throughput       {len(accepted) / elapsed:,.0f} alerts/s, {len(latencies) / elapsed:,.0f} requests/s "
          f"over {elapsed:.2f} s")
    print(f"request latency  p50 {q[49] * 1000:.1f} ms   p90 {q[89] * 1000:.1f} ms   p99 {q[98] * 1000:.1f} ms   max {latencies[-1] * 1000:.1f} ms")
    ok = not missing and len(stored) == len(accepted) and counted == len(accepted) and incidents == len(set(plan))
    print(
        f"loss check       {'OK' if ok else 'FAILED'}: {len(stored)} stored of {len(accepted)} accepted, "
        f"{len(missing)} missing; {incidents} incidents for {len(set(plan))} label sets; alert_count total {counted}"
    )
    return 0 if ok and not failures else 1


if __name__ == "__main__":
    sys.exit(main())
