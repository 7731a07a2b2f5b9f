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
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.escalation.models import EscalationPolicy, EscalationRule
from apps.incidents import tasks
from apps.incidents.models import Alert, Incident
from apps.integrations.services import create_integration, ingestion_url
from apps.notifications.models import ContactMethod, Notification

from .conftest import free_port, load_fixture, process_env
from .factories import IncidentFactory
from .fake_anthropic import tool_answer
from .notify_fakes import _clean_breakers, fake_twilio  # noqa: F401  (fixtures)

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


@pytest.mark.django_db(transaction=True)
def test_with_redis_silent_an_alert_still_pages_on_time_beat_doing_the_workers_part(service, fake_twilio, tmp_path):
    """The settling incidents, the escalation timers and the outbox are in PostgreSQL:
    with no broker to hand them to the workers, beat settles, ticks and delivers itself."""
    user = get_user_model().objects.create(username="oncall")
    ContactMethod.objects.create(user=user, kind="sms", address="+4915112345678", verified=True)
    policy = EscalationPolicy.objects.create(name="sms now", service=service)
    EscalationRule.objects.create(policy=policy, position=0, delay_minutes=0, channels=["sms"]).users.set([user])
    _, token = create_integration(name="am", kind="alertmanager", service=service)

    silent = Blackhole()
    env = process_env(REDIS_URL=f"redis://127.0.0.1:{silent.port}/0", TWILIO_API_BASE=fake_twilio.url,
                      TWILIO_ACCOUNT_SID=settings.TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN=settings.TWILIO_AUTH_TOKEN,
                      TWILIO_FROM=settings.TWILIO_FROM)
    web, base = serve(env)
    beat = subprocess.Popen([sys.executable, "-m", "celery", "-A", "incident_manager", "beat", "-l", "info",
                             "--pidfile", str(tmp_path / "beat.pid")], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines, running = [], threading.Event()

    def read_log():
        for line in beat.stderr:
            lines.append(line)
            if "Sending due task" in line:
                running.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        assert running.wait(30), "beat did not start"
        status, _, answer, _ = post(base + urlsplit(ingestion_url(token, "alertmanager")).path,
                                    load_fixture("alertmanager_webhook_v4_firing.json"))
        assert status == 202
        accepted = time.monotonic()
        sent = fake_twilio.wait_for("Messages.json", timeout=30)
        took = sent[0].at - accepted
        deadline = time.monotonic() + 10
        while not Notification.objects.filter(status=Notification.Status.DELIVERED).exists():
            assert time.monotonic() < deadline, "the page went out but its row was never marked"
            time.sleep(0.1)
    finally:
        beat.terminate()
        web.terminate()
        beat.wait(20)
        reader.join(5)
        web.wait(10)
        silent.close()
    log = "".join(lines)
    assert len(sent) == 1 and sent[0].data["To"] == "+4915112345678", log
    # settle_overdue runs every 5 s, the tick every 2 s, deliver_due every second.
    assert took < 10, (took, log)
    row = Notification.objects.get()
    assert row.incident_id == answer["alerts"][0]["incident"] and row.channel == "sms"
    for task in settings.BEAT_RUN_WITHOUT_BROKER:
        assert f"broker unavailable: running {task} in beat" in log


def test_a_second_opinion_never_queued_is_asked_for_by_the_beat_sweep(anthropic_api, celery_worker, service):
    """Opened while Redis was away (or its task lost): the rules were unsure, the LLM was never asked."""
    anthropic_api.script = [(200, tool_answer({"category": "availability", "severity": "high", "confidence": 0.9,
                                               "rationale": "probe down"}), {}, 0)]
    unsure = dict(service=service, classified_by="rules", classification_confidence=0.3, severity="medium")
    lost = IncidentFactory(**unsure, title="Blackbox probe failing")
    just_opened = IncidentFactory(**unsure)  # its own task may still come
    sure = IncidentFactory(**{**unsure, "classification_confidence": 0.95})
    Incident.objects.filter(pk__in=[lost.pk, sure.pk]).update(created_at=timezone.now() - timedelta(minutes=2))

    assert tasks.second_opinions_overdue() == 1
    deadline = time.monotonic() + 15
    while Incident.objects.get(pk=lost.pk).classified_by != "llm":
        assert time.monotonic() < deadline, "the sweep's task never asked the LLM"
        time.sleep(0.1)
    assert len(anthropic_api.requests) == 1
    assert tasks.second_opinions_overdue() == 0  # asked once: not again, whatever it answered
    assert Incident.objects.get(pk=just_opened.pk).classified_by == "rules"
