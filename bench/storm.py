"""Alert storm: how much noise reaches a person, and how fast the storm is taken in.

    make run                                  # in one terminal
    make bench-storm ARGS="-n 10000"          # in another
    make bench-storm ARGS="-n 10000 --scenario shared"              # one Alertmanager, 8 services
    make bench-storm ARGS="-n 10000 --scenario shared --no-routes"  # ... all on one service

Generates a storm over 20 services from 5 real incidents and replays it, in
order, at a running portal: Alertmanager groups re-sent every simulated minute
(up to 100 alerts per request), label noise (a `pod` label that changes, so the
same problem arrives under new fingerprints), flapping instances (resolved, then
firing again), a second monitoring tool that words the same problems in its own
way (generic JSON, paraphrased titles, no shared labels), and services whose
alerts are the effect of a dependency's outage.  Each service has one grouping
rule (alertname, cluster; 30 minutes) and the default similarity threshold; the
services' dependencies are set as a team would set them.

`--scenario shared` is how most teams run Alertmanager: one Alertmanager, one
webhook receiver, the service in a `service` label.  One integration takes a
storm over 8 services; the same alert names fire on several services at once
(one Alertmanager group, grouped by alertname, holds several services' alerts),
with each service's own wording of the summary, every alert with its own label
set (instance, a changing pod).  Each (service, alert name) is a real incident.
The integration has a route per service (`service="<name>"`) and the services
their default settings (no grouping rule, the default similarity threshold);
with `--no-routes` all of it lands on the integration's one service, where only
the identifying labels (apps/incidents/identity.py) keep the services apart.

The storm's ground truth (which real incident each alert belongs to) stays in
this script.  When the worker has settled every new incident, it prints alerts
in, incidents out (open, not merged, not held back by a parent: what pages),
noise reduction, wrong merges (an incident, or a parent/child link, holding
alerts of two real incidents) and missed merges (one real incident split over
several incidents), and alerts/s of the replay.
"""

import argparse
import asyncio
import hashlib
import json
import os
import random
import sys
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

import django  # noqa: E402

django.setup()

import httpx  # noqa: E402
from django.utils import timezone  # noqa: E402

from apps.accounts.models import Team  # noqa: E402
from apps.incidents.models import Alert, GroupingRule, Incident, Service  # noqa: E402
from apps.integrations.models import Route  # noqa: E402
from apps.integrations.services import create_integration, ingestion_url  # noqa: E402

SERVICES = [
    "db", "api-gateway", "checkout", "orders", "payments", "inference", "chat-api", "embeddings", "billing", "edge",
    "search", "auth", "notifications", "reports", "scheduler", "cache", "queue", "storage", "web", "admin",
]
DEPENDS_ON = {"api-gateway": ["db"], "checkout": ["db"], "orders": ["db"], "chat-api": ["inference"], "embeddings": ["inference"]}


def digest(value, size: int = 16) -> str:
    return hashlib.blake2b(repr(value).encode(), digest_size=size // 2).hexdigest()


class Storm:
    """The storm as a list of requests (service, kind, body) and the truth of each alert key."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.requests: list[tuple[int, str, str, object]] = []  # (minute, service, kind, body)
        self.truth: dict[str, str] = {}  # dedup key -> real incident

    def am(self, service, truth, alertname, cluster, instances, severity, summary, *, pod_noise=False, minute=0, resolved=()):
        alerts = []
        for instance in instances:
            labels = {"alertname": alertname, "cluster": cluster, "instance": instance, "severity": severity}
            if pod_noise:  # a restarted pod: the same problem under a new fingerprint every few minutes
                labels["pod"] = f"{instance}-{digest((instance, minute // 3), 6)}"
            fingerprint = digest(sorted(labels.items()))
            self.truth[fingerprint] = truth
            alerts.append({
                "status": "resolved" if instance in resolved else "firing", "labels": labels,
                "annotations": {"summary": summary.format(instance=instance)},
                "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint,
            })
        for start in range(0, len(alerts), 100):
            chunk = alerts[start : start + 100]
            self.requests.append((minute, service, "alertmanager", {
                "version": "4", "groupKey": f'{{}}:{{alertname="{alertname}", cluster="{cluster}"}}', "truncatedAlerts": 0,
                "status": "firing" if any(a["status"] == "firing" for a in chunk) else "resolved",
                "receiver": "incident-manager", "groupLabels": {"alertname": alertname, "cluster": cluster},
                "commonLabels": {"alertname": alertname}, "commonAnnotations": {}, "externalURL": "http://alertmanager:9093",
                "alerts": chunk,
            }))

    def other_tool(self, service, truth, titles, severity, *, minute):
        """A second tool's alerts: its own words, its own keys, no labels in common."""
        body = []
        for title in titles:
            key = f"tool2:{digest(title)}"
            self.truth[key] = truth
            body.append({"title": title, "severity": severity, "dedup_key": key, "source": "tool2"})
        self.requests.append((minute, service, "generic", body))


def generate(n: int, seed: int) -> Storm:
    storm = Storm(seed)
    gpus = [f"gpu-{i}" for i in range(40)]
    minute = 0
    while True:
        sent = sum(len(body["alerts"]) if kind == "alertmanager" else len(body) for _, _, kind, body in storm.requests)
        if sent >= n:
            return storm
        # T1: the database's primary is down; services that need it fail with it.
        storm.am("db", "T1", "PostgresDown", "eu-1", ["pg-0", "pg-1", "pg-2"], "critical", "PostgreSQL {instance} is not answering", minute=minute)
        for dependent in ("api-gateway", "checkout", "orders"):
            storm.am(dependent, "T1", "HighErrorRate", "eu-1", [f"{dependent}-{i}" for i in range(12)], "critical",
                     "5xx above 20% on {instance}", pod_noise=True, minute=minute)
        # T2: GPU memory exhausted on the inference fleet, seen by two tools; the LLM APIs on it slow down.
        storm.am("inference", "T2", "GPUMemoryHigh", "us-2", gpus, "critical", "GPU memory above 90% on {instance}", minute=minute)
        if minute % 2 == 0:
            storm.other_tool("inference", "T2", [
                f"Inference node {storm.rng.choice(gpus)}: GPU memory usage over 90 percent",
                f"High GPU memory utilisation on inference host {storm.rng.choice(gpus)}",
            ], "critical", minute=minute)
        for dependent in ("chat-api", "embeddings"):
            storm.am(dependent, "T2", "LatencyHigh", "us-2", [f"{dependent}-{i}" for i in range(8)], "high",
                     "p95 latency above 2x baseline on {instance}", minute=minute)
        # T3: token spend spikes on billing, worded differently by the cost tool.
        storm.am("billing", "T3", "TokenCostSpike", "global", ["gpt-main", "gpt-mini", "embed-v3"], "high",
                 "Token cost up more than 5% hour over hour for {instance}", minute=minute)
        if minute % 3 == 0:
            storm.other_tool("billing", "T3", [
                "Token spend rose 7% in the last hour for model gpt-main",
                "LLM token spend for gpt-mini is up 9% hour over hour",
            ], "high", minute=minute)
        # T4: search latency flaps: instances resolve and fire again.
        flapping = [f"search-{i}" for i in range(10)]
        storm.am("search", "T4", "SearchLatencyHigh", "eu-1", flapping, "medium", "Search p99 above 800 ms on {instance}",
                 minute=minute, resolved=set(storm.rng.sample(flapping, 3)))
        # T5: certificates about to expire at the edge.
        storm.am("edge", "T5", "CertificateExpiring", "global", ["api.example.org", "chat.example.org"], "high",
                 "TLS certificate of {instance} expires in 6 days", minute=minute)
        minute += 1


SHARED_SERVICES = ["chat-api", "embeddings", "search", "checkout", "billing", "rag", "agents", "moderation"]
# Alert name -> how each service's rules word it ({instance}, {service}); the first services of
# each list fire it.
SHARED_PROBLEMS = {
    "LLMLatencyHigh": (6, ["p95 latency above 2x baseline on {instance}", "{service}: requests slow, p95 over 2 s ({instance})",
                           "Latency SLO burning for {service} on {instance}"]),
    "HighErrorRate": (5, ["5xx above 5% on {instance}", "{service} is failing requests on {instance}",
                          "Error ratio of {service} over threshold ({instance})"]),
    "GPUMemoryHigh": (3, ["GPU memory above 90% on {instance}", "{service} model server near GPU OOM ({instance})"]),
    "TokenCostSpike": (4, ["Token spend up 20% hour over hour for {service}", "{service}: LLM token cost spiking ({instance})"]),
}


def generate_shared(n: int, seed: int) -> Storm:
    storm = Storm(seed)
    minute = 0
    while True:
        sent = sum(len(body["alerts"]) for _, _, _, body in storm.requests)
        if sent >= n:
            return storm
        for alertname, (count, wordings) in SHARED_PROBLEMS.items():
            alerts = []
            offset = sum(map(ord, alertname)) % len(SHARED_SERVICES)  # each problem on its own services
            for k in range(count):
                service = SHARED_SERVICES[(offset + k) % len(SHARED_SERVICES)]
                summary = wordings[k % len(wordings)]
                for i in range(6):
                    instance = f"{service}-{i}"
                    labels = {"alertname": alertname, "service": service, "instance": instance, "severity": "critical",
                              "pod": f"{instance}-{digest((instance, minute // 3), 6)}"}
                    fingerprint = digest(sorted(labels.items()))
                    storm.truth[fingerprint] = f"{service}:{alertname}"
                    alerts.append({
                        "status": "firing", "labels": labels,
                        "annotations": {"summary": summary.format(instance=instance, service=service)},
                        "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                        "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint,
                    })
            storm.requests.append((minute, "shared", "alertmanager", {
                "version": "4", "groupKey": f'{{}}:{{alertname="{alertname}"}}', "truncatedAlerts": 0, "status": "firing",
                "receiver": "incident-manager", "groupLabels": {"alertname": alertname},
                "commonLabels": {"alertname": alertname, "severity": "critical"}, "commonAnnotations": {},
                "externalURL": "http://alertmanager:9093", "alerts": alerts,
            }))
        minute += 1


def setup_shared(stamp: str, routes: bool):
    """One Alertmanager integration on a default service, with a route per service (or none)."""
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    names = ["platform", *SHARED_SERVICES] if routes else ["platform"]
    services = {
        name: Service.objects.create(team=team, name=f"{name} {stamp}", slug=f"shared-{stamp}-{name}") for name in names
    }
    integration, token = create_integration(name=f"shared {stamp}", kind="alertmanager", service=services["platform"])
    if routes:
        for position, name in enumerate(SHARED_SERVICES):
            Route.objects.create(integration=integration, position=position, name=name,
                                 matchers=[f'service="{name}"'], service=services[name])
    return services, {("shared", "alertmanager"): urlsplit(ingestion_url(token, "alertmanager")).path}


def setup(stamp: str):
    team, _ = Team.objects.get_or_create(slug="bench", defaults={"name": "Benchmarks"})
    services = {
        name: Service.objects.create(team=team, name=f"{name} {stamp}", slug=f"storm-{stamp}-{name}") for name in SERVICES
    }
    for name, needs in DEPENDS_ON.items():
        services[name].depends_on.add(*(services[need] for need in needs))
    paths = {}
    for name, service in services.items():
        GroupingRule.objects.create(service=service, name="alertname and cluster", group_by=["alertname", "cluster"])
        for kind in ("alertmanager", "generic"):
            _, token = create_integration(name=f"storm {stamp} {name} {kind}", kind=kind, service=service)
            paths[(name, kind)] = urlsplit(ingestion_url(token, kind)).path
    return services, paths


async def replay(base, storm, paths, concurrency):
    """Minute by minute; within a minute, each service's requests in order (a sender
    waits for its answer) and the services in parallel."""
    minutes = defaultdict(lambda: defaultdict(list))
    for minute, service, kind, body in storm.requests:
        minutes[minute][service].append((kind, body))
    failures = defaultdict(int)
    accepted = 0
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def sender(requests):
            nonlocal accepted
            for path, body in requests:
                async with gate:
                    response = await client.post(path, content=json.dumps(body), headers={"Content-Type": "application/json"})
                if response.status_code == 202:
                    accepted += len(response.json()["alerts"])
                else:
                    failures[response.status_code] += 1

        started = time.perf_counter()
        for minute in sorted(minutes):
            await asyncio.gather(*(sender([(paths[(service, kind)], body) for kind, body in requests])
                                   for service, requests in minutes[minute].items()))
        return accepted, dict(failures), time.perf_counter() - started


def score(services, storm):
    incidents = Incident.objects.filter(service__in=services.values())
    truths = defaultdict(set)  # incident -> real incidents of its alerts
    for incident_id, key in Alert.objects.filter(incident__in=incidents).values_list("incident_id", "dedup_key"):
        truths[incident_id].add(storm.truth[key])
    parent = dict(incidents.values_list("pk", "parent_id"))
    top = {}  # incident -> the top of its parent chain
    for pk in parent:
        root = pk
        while parent.get(root):
            root = parent[root]
        top[pk] = root
    surviving = list(incidents.filter(merged_into__isnull=True).values_list("pk", flat=True))
    families = defaultdict(set)
    for pk in surviving:
        families[top[pk]] |= truths[pk]
    wrong = sum(len(t) - 1 for t in families.values() if len(t) > 1)
    per_truth = defaultdict(int)
    for t in families.values():
        for truth in t:
            per_truth[truth] += 1
    missed = sum(count - 1 for count in per_truth.values())
    return len(surviving), len(families), wrong, missed, per_truth


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("-n", type=int, default=10000, help="alerts in the storm (about)")
    parser.add_argument("-c", type=int, default=8, help="requests in flight")
    parser.add_argument("--url", default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scenario", choices=["services", "shared"], default="services",
                        help="services: 20 services, an integration each; shared: one Alertmanager for 8 services")
    parser.add_argument("--no-routes", action="store_true", help="shared: no routes, every alert on one service")
    args = parser.parse_args()

    stamp = timezone.now().strftime("%Y%m%d%H%M%S")
    if args.scenario == "shared":
        storm = generate_shared(args.n, args.seed)
        services, paths = setup_shared(stamp, routes=not args.no_routes)
        shape = (f"one Alertmanager for {len(SHARED_SERVICES)} services by label, "
                 f"{'no routes' if args.no_routes else 'a route each'}, {len(set(storm.truth.values()))} real incidents")
    else:
        storm = generate(args.n, args.seed)
        services, paths = setup(stamp)
        shape = "20 services, 5 real incidents"
    accepted, failures, elapsed = asyncio.run(replay(args.url, storm, paths, args.c))

    deadline = time.monotonic() + 120
    while Incident.objects.filter(service__in=services.values(), settling=True).exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    unsettled = Incident.objects.filter(service__in=services.values(), settling=True).count()
    incidents, pages, wrong, missed, per_truth = score(services, storm)
    print(f"storm            {len(storm.requests)} requests, {shape} (seed {args.seed})")
    print(f"alerts in        {accepted} accepted   failures {failures or 0}")
    print(f"replay           {accepted / elapsed:,.0f} alerts/s over {elapsed:.1f} s (concurrency {args.c})")
    print(f"incidents out    {incidents} not merged; {pages} paging (not held back by a parent){'; ' + str(unsettled) + ' still settling' if unsettled else ''}")
    print(f"noise reduction  {100 * (1 - pages / accepted):.2f}% (alerts in -> incidents that page)")
    print(f"wrong merges     {wrong}")
    print(f"missed merges    {missed}  ({', '.join(f'{t}: {n}' for t, n in sorted(per_truth.items()))} paging incidents)")
    return 0 if not failures and not unsettled else 1


if __name__ == "__main__":
    sys.exit(main())
