"""The load of a chaos run (bench/chaos.py): an alert storm played into Alertmanager as
Prometheus would, and people acknowledging some of the incidents it opens.

The storm: 5 services x 12 problems = 60 Alertmanager groups (group_by alertname,
service) of 40 instances each, 2,400 alerts.  Every group fires in episodes: it starts
(its instances join in three batches, so Alertmanager notifies the group as it
grows), a tenth of its instances resolve half-way (one alert of a grouped incident),
then all resolve (the incident resolves), and after a quiet spell it fires again (a new
incident).  So new incidents keep opening, and escalation levels keep falling due,
throughout the run, faults included.  Like Prometheus, the poster sends every alert's
current state every POST_INTERVAL seconds (firing ones with endsAt ahead, resolved ones
for a minute after they resolved).

Each alert episode is identified by its labels and its startsAt (whole seconds), which
Alertmanager passes on unchanged: that is how the score ties the alerts stored to the
episodes posted.
"""

import http.client
import json
import random
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime

SERVICES = ["chat-api", "embeddings", "search", "billing", "agents"]
# Twelve problems worded apart, so that similarity (cosine 0.85) keeps a service's
# incidents apart: a merge would be correct behaviour, but not the one scored here.
PROBLEMS = {
    "HighErrorRate": "5xx responses above 5% on {instance}",
    "LatencyHigh": "p95 request latency above 2 s on {instance}",
    "GPUMemoryHigh": "GPU memory above 90% on {instance}",
    "TokenCostSpike": "Token spend up 20% hour over hour for {instance}",
    "DiskAlmostFull": "Disk almost full on {instance}: under 5% free",
    "PodCrashLooping": "Container keeps restarting (CrashLoopBackOff) on {instance}",
    "CertificateExpiring": "TLS certificate of {instance} expires in 6 days",
    "QueueBacklog": "Job queue backlog over 10k messages on {instance}",
    "ReplicationLag": "Database replica {instance} is 30 s behind the primary",
    "GroundingDropped": "Answer grounding score dropped below 0.7 on {instance}",
    "UpstreamRateLimited": "Upstream LLM provider answers HTTP 429 to {instance}",
    "MemoryLeak": "Resident memory of {instance} grows 50 MB per hour",
}
INSTANCES = 40
POST_INTERVAL = 2.0  # seconds between Prometheus's posts of every alert's state
RESOLVED_RESEND = 60.0  # seconds a resolved alert is still posted


@dataclass
class Episode:
    """One alert firing from `start` until `end` (offsets from the storm's start, whole seconds)."""

    key: tuple[str, str, str]  # (service, alertname, instance)
    start: int
    end: int | None  # None: still firing when the storm stops changing
    first_posted: float | None = None  # time.time() of the first post that carried it firing
    resolve_posted: float | None = None  # ... carried it resolved


@dataclass
class GroupEpisode:
    service: str
    alertname: str
    start: int
    end: int | None


def plan(duration: float, seed: int, *, fire=(50, 150), quiet=(15, 40)) -> tuple[list[GroupEpisode], list[Episode]]:
    """The storm's timetable: every group's episodes over `duration` seconds, and every
    alert's within them."""
    rng = random.Random(seed)
    groups, alerts = [], []
    for service in SERVICES:
        for alertname in PROBLEMS:
            t = rng.randint(0, 30)  # the storm's onset: every group within 30 s
            while t < duration:
                length = rng.randint(*fire)
                end = t + length if t + length < duration else None
                groups.append(GroupEpisode(service, alertname, t, end))
                early = set(rng.sample(range(INSTANCES), INSTANCES // 10))
                for i in range(INSTANCES):
                    start = t + 4 * (i % 3)  # three batches, 4 s apart
                    stop = end
                    if i in early and end is not None:
                        stop = t + length // 2  # one alert of the group resolves, the rest fire on
                    alerts.append(Episode((service, alertname, f"{service}-{i:02d}"), start, stop))
                if end is None:
                    break
                t = end + rng.randint(*quiet)
    return groups, alerts


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat().replace("+00:00", "Z")


class Poster(threading.Thread):
    """Prometheus: posts every alert's state to Alertmanager's API v2 every POST_INTERVAL."""

    def __init__(self, alertmanager: str, alerts: list[Episode], t0: float):
        super().__init__(daemon=True, name="poster")
        self.base, self.alerts, self.t0 = alertmanager, alerts, t0
        self.frozen_at: float | None = None  # offset after which nothing changes any more
        self.stopped = threading.Event()
        self.posts = self.failures = 0

    def freeze(self) -> None:
        """From now on no alert starts or resolves: the final state stays as it is."""
        self.frozen_at = time.time() - self.t0

    def _current(self, t: float) -> list[Episode]:
        """Each alert's latest episode begun by `t`: Prometheus knows one state per label
        set (sending an older, resolved episode too would make Alertmanager take it back)."""
        latest = {}
        for episode in self.alerts:
            if episode.start <= t:
                latest[episode.key] = episode  # plan() lists each alert's episodes in order
        return list(latest.values())

    def run(self) -> None:
        while not self.stopped.wait(max(0.0, POST_INTERVAL - (time.time() - self.t0) % POST_INTERVAL)):
            self.post_once()

    def post_once(self) -> None:
        now = time.time()
        t = now - self.t0 if self.frozen_at is None else min(now - self.t0, self.frozen_at)
        body, sent = [], []
        for episode in self._current(t):
            firing = episode.end is None or episode.end > t
            if not firing and t - episode.end > RESOLVED_RESEND:
                continue
            service, alertname, instance = episode.key
            ends = now + 120 if firing else self.t0 + episode.end
            body.append({
                "labels": {"alertname": alertname, "service": service, "instance": instance, "severity": "critical"},
                "annotations": {"summary": PROBLEMS[alertname].format(instance=instance)},
                "startsAt": iso(self.t0 + episode.start), "endsAt": iso(ends),
                "generatorURL": "http://prometheus:9090/graph",
            })
            sent.append((episode, firing))
        for chunk in range(0, len(body), 1000):
            try:
                request = urllib.request.Request(f"{self.base}/api/v2/alerts", data=json.dumps(body[chunk:chunk + 1000]).encode(),
                                                 headers={"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=10).read()
            except OSError:
                self.failures += 1
                return
        self.posts += 1
        for episode, firing in sent:
            if firing and episode.first_posted is None:
                episode.first_posted = now
            if not firing and episode.resolve_posted is None:
                episode.resolve_posted = now


# ----- acknowledgements ----------------------------------------------------------------------


@dataclass
class Ack:
    incident: int
    paged_at: float  # first page the fake Slack took for it
    tries: list = field(default_factory=list)  # (time, status or error)
    done_at: float | None = None


class Acker(threading.Thread):
    """A responder: acknowledges every `every`-th incident (by id) `after` seconds after
    its first page reached Slack, through the REST API with an API key, trying again
    every 2 s while the portal cannot answer (5xx, connection refused)."""

    def __init__(self, tap_port: int, api_key: str, slack, *, every: int = 3, after: float = 20.0):
        super().__init__(daemon=True, name="acker")
        self.tap_port, self.api_key, self.slack = tap_port, api_key, slack
        self.every, self.after = every, after
        self.acks: dict[int, Ack] = {}
        self.paused = threading.Event()
        self.stopped = threading.Event()

    def _current(self, t: float) -> list[Episode]:
        """Each alert's latest episode begun by `t`: Prometheus knows one state per label
        set (sending an older, resolved episode too would make Alertmanager take it back)."""
        latest = {}
        for episode in self.alerts:
            if episode.start <= t:
                latest[episode.key] = episode  # plan() lists each alert's episodes in order
        return list(latest.values())

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            if self.paused.is_set():
                continue
            now = time.time()
            with self.slack.lock:
                received = list(self.slack.received)
            for r in received:
                if r.incident and r.incident % self.every == 0 and r.incident not in self.acks and r.to.startswith("U"):
                    self.acks[r.incident] = Ack(r.incident, r.at)
            for ack in self.acks.values():
                if ack.done_at is None and now >= ack.paged_at + self.after and (not ack.tries or now - ack.tries[-1][0] >= 2):
                    self._try(ack)

    def _try(self, ack: Ack) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.tap_port, timeout=15)
        try:
            conn.request("POST", f"/api/v1/incidents/{ack.incident}/acknowledge/",
                         headers={"Authorization": f"Bearer {self.api_key}", "Content-Length": "0"})
            status = conn.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            status = type(exc).__name__
        finally:
            conn.close()
        ack.tries.append((time.time(), status))
        # 200: acknowledged; 409: resolved or acknowledged already: nothing left to do.
        if status in (200, 409, 404):
            ack.done_at = time.time()
