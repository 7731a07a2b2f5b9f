"""Back-pressure senders understand: PostgreSQL away is a 503 with Retry-After; Redis
silent costs a sender no more than its short timeout, the alert is stored, and beat's
sweep does the work that could not be queued once Redis is back."""

import json
import socket
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen

import pytest
import time_machine
from django.utils import timezone

from apps.incidents import tasks
from apps.incidents.models import Alert, Incident
from apps.integrations.services import create_integration, ingestion_url

from .conftest import free_port, load_fixture, process_env

ROOT = Path(__file__).resolve().parent.parent


class Blackhole:
    """A TCP server that takes connections and never answers: a Redis behind a dead
    network path, which refuses nothing."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.held = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                return
            self.held.append(connection)

    def close(self):
        self.listener.close()
        for connection in self.held:
            connection.close()


def serve(env: dict) -> tuple[subprocess.Popen, str]:
    """The web process as deployed (gunicorn, incident_manager.wsgi) with `env`."""
    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "incident_manager.wsgi", "-b", f"127.0.0.1:{port}", "-w", "1", "--timeout", "60"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urlopen(f"{base}/healthz", timeout=1)
            return web, base
        except OSError:
            assert web.poll() is None, web.stderr.read().decode()
            assert time.monotonic() < deadline, "gunicorn did not start"
            time.sleep(0.2)


def post(url: str, body: dict):
    request = Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    started = time.monotonic()
    try:
        with urlopen(request, timeout=30) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read()), time.monotonic() - started
    except HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read()), time.monotonic() - started


@pytest.mark.django_db(transaction=True)
def test_with_postgresql_away_senders_get_a_503_with_retry_after_in_json(service):
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    nothing = free_port()  # nobody listens there
    web, base = serve(process_env(DATABASE_URL=f"postgres://postgres@127.0.0.1:{nothing}/gone"))
    try:
        path = urlsplit(ingestion_url(token, "alertmanager")).path
        status, headers, body, _ = post(base + path, load_fixture("alertmanager_webhook_v4_firing.json"))
        assert (status, headers.get("Retry-After"), headers.get("Content-Type")) == (503, "5", "application/json")
        assert body == {"error": "Service unavailable: the database is unavailable. Retry later."}
        status, headers, body, _ = post(base + "/v2/enqueue", load_fixture("pagerduty_events_v2_trigger.json"))
        assert (status, headers.get("Retry-After")) == (503, "5")
        with urlopen(f"{base}/healthz", timeout=5) as alive:
            assert alive.status == 200
        try:
            urlopen(f"{base}/readyz", timeout=10)
            raise AssertionError("ready without a database")
        except HTTPError as error:
            checks = json.loads(error.read())["checks"]
            assert error.code == 503 and checks["database"].startswith("error") and checks["redis"] == "ok"
    finally:
        web.terminate()
        web.wait(10)


@pytest.mark.django_db(transaction=True)
def test_with_redis_silent_an_alert_is_stored_within_2_s_and_settled_once_redis_is_back(service):
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    silent = Blackhole()
    web, base = serve(process_env(REDIS_URL=f"redis://127.0.0.1:{silent.port}/0"))
    try:
        path = urlsplit(ingestion_url(token, "alertmanager")).path
        body = load_fixture("alertmanager_webhook_v4_firing.json")
        status, _, answer, took = post(base + path, body)
        assert status == 202 and took < 2, (status, took)
        # Every later request too: the process has stopped waiting for Redis.
        for _ in range(3):
            status, _, _, took = post(base + path, body)
            assert status == 202 and took < 1, took
    finally:
        web.terminate()
        web.wait(10)
        silent.close()
    incident = Incident.objects.get(pk=answer["alerts"][0]["incident"])
    assert Alert.objects.filter(incident=incident).count() == 4
    assert incident.settling  # its settle task never reached the worker

    with time_machine.travel(timezone.now() + timedelta(seconds=31)):
        tasks.settle_overdue()  # beat's sweep, with Redis back
    incident.refresh_from_db()
    assert not incident.settling
