"""The real sender: Debian's Alertmanager, one receiver for several services told apart
by a `service` label, as most teams run it, posting to a live server; a real Celery
worker settles the new incidents (similarity) before anything pages."""

import json
import shutil
import subprocess
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest

from apps.incidents.models import Alert, Incident
from apps.integrations.models import Route
from apps.integrations.services import create_integration, ingestion_url

from .conftest import free_port
from .factories import ServiceFactory

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(not ALERTMANAGER, reason="Debian's prometheus-alertmanager is not installed")

CONFIG = """
route:
  receiver: incident-manager
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: incident-manager
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


@pytest.fixture
def alertmanager(tmp_path, live_server):
    """Start Alertmanager with a webhook to `url` (set by the test before the first alert)."""
    processes = []

    def start(url: str) -> str:
        (tmp_path / "alertmanager.yml").write_text(CONFIG.format(url=url))
        port = free_port()
        processes.append(subprocess.Popen(
            [ALERTMANAGER, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'data'}",
             f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                urlopen(f"{base}/-/ready", timeout=1)
                return base
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    yield start
    for process in processes:
        process.terminate()
        process.wait(10)


def fire(base: str, alerts: list[dict]) -> None:
    body = json.dumps(alerts).encode()
    urlopen(Request(f"{base}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}), timeout=5)


def wait_for(condition, seconds=30):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


def test_one_alertmanager_for_four_services_keeps_each_services_problem_apart(alertmanager, live_server, celery_worker):
    platform = ServiceFactory(slug="platform", name="Platform")
    chat = ServiceFactory(slug="chat", name="Chat")
    integration, token = create_integration(name="prod alertmanager", kind="alertmanager", service=platform)
    Route.objects.create(integration=integration, name="chat", matchers=['service="chat"'], service=chat)
    base = alertmanager(live_server.url + urlsplit(ingestion_url(token, "alertmanager")).path)

    now = datetime.now(UTC)
    # The same alert, in the same words, on four services: one Alertmanager group.
    fire(base, [
        {"labels": {"alertname": "LLMLatencyHigh", "service": service, "instance": f"{service}-{i}"},
         "annotations": {"summary": f"p95 latency above 2x baseline on node {i}"},
         "startsAt": now.isoformat(), "endsAt": (now + timedelta(hours=1)).isoformat()}
        for service in ("chat", "rag", "search", "agents") for i in (1, 2)
    ])

    wait_for(lambda: Alert.objects.count() == 8)
    wait_for(lambda: not Incident.objects.filter(settling=True).exists())  # the worker has compared them

    standing = Incident.objects.filter(merged_into__isnull=True)
    by_label = {
        incident.labels["service"]: (incident.service.slug, sorted(a.labels["service"] for a in Alert.objects.filter(incident=incident)))
        for incident in standing
    }
    assert by_label == {
        "chat": ("chat", ["chat", "chat"]), "rag": ("platform", ["rag", "rag"]),
        "search": ("platform", ["search", "search"]), "agents": ("platform", ["agents", "agents"]),
    }
    assert standing.count() == 4  # each service's two alerts in one incident, by similarity
    routes = set(Alert.objects.values_list("route", flat=True))
    assert routes == {'route “chat” (service="chat")', "default route"}
    # Alertmanager's alerts carry no severity label here: the classifier's pages.
    assert set(standing.values_list("severity_source", flat=True)) == {"rules"}
