import contextlib
import json
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import hypothesis
import pytest
from celery.contrib.testing.worker import start_worker
from django.conf import settings
from django.db import connection
from hypothesis.database import DirectoryBasedExampleDatabase

from apps.incidents import throttle
from apps.integrations.services import create_integration, ingestion_url
from incident_manager import redis_outage, versioned_copy
from incident_manager.celery import app as celery_app

from .factories import MembershipFactory, ServiceFactory, UserFactory

FIXTURES = Path(__file__).parent / "fixtures"

# Hypothesis, for tests that set no count of their own: in the suite a fixed, modest
# number of examples, the same ones every run (a failure means a change, not luck);
# `make fuzz` runs the same tests with HYPOTHESIS_PROFILE=fuzz, many more examples, new
# ones each time, and keeps those that failed to try first the next time.
hypothesis.settings.register_profile("suite", max_examples=40, derandomize=True, database=None, deadline=None)
hypothesis.settings.register_profile(
    "fuzz", max_examples=500, deadline=None,
    database=DirectoryBasedExampleDatabase(Path(__file__).resolve().parent.parent / "var" / "hypothesis"),
)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "suite"))


def load_fixture(name: str):
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture(autouse=True)
def _fresh_process_state():
    """A test's rows roll back with it, so the process's copies of them (versioned_copy)
    must go too; and what it remembers of throttle windows, which tests reset in Redis,
    and of a Redis outage a test made."""
    yield
    versioned_copy.forget_all()
    throttle.forget()
    redis_outage.reset()


@pytest.fixture
def service(db):
    return ServiceFactory(slug="checkout")


@pytest.fixture
def ingest_path(service):
    """Return a function kind -> ingestion path (with a fresh secret token) for `service`."""

    def make(kind: str = "alertmanager") -> str:
        _, token = create_integration(name=f"{kind} test", kind=kind, service=service)
        return urlsplit(ingestion_url(token, kind)).path

    return make


@pytest.fixture
def anthropic_api(settings):
    """The real anthropic SDK against a local fake of api.anthropic.com (tests/fake_anthropic.py)."""
    from django.core.cache import cache

    from .fake_anthropic import FakeAnthropic

    cache.clear()  # LLM answers are cached by fingerprint, and tests send the same alerts
    fake = FakeAnthropic()
    settings.ANTHROPIC_API_KEY = "sk-ant-test-key"
    settings.ANTHROPIC_BASE_URL = fake.url
    settings.LLM_TIMEOUT_SECONDS = 1.0
    settings.LLM_MAX_RETRIES = 2
    yield fake
    fake.close()


@pytest.fixture
def responder(db, service):
    return MembershipFactory(team=service.team, user=UserFactory(username="rita")).user


@pytest.fixture
def celery_worker(transactional_db):
    """A real Celery worker (in a thread of this process) on the real Redis broker."""
    celery_app.control.purge()
    # Both queues, as `make run`'s two workers serve them (settings.CELERY_TASK_ROUTES).
    queues = ["celery", settings.NOTIFY_QUEUE]
    with start_worker(celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30, queues=queues) as worker:
        yield worker


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_asgi(monkeypatch, **tls):
    """Run the project's ASGI app (HTTP and websockets) in uvicorn on a free port."""
    import uvicorn
    from django.db import connections

    # The server's threads must not keep connections open past the test, or the test
    # database cannot be dropped at the end of the run.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            "incident_manager.asgi:application",
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=2,  # don't wait on clients' idle keep-alive connections
            **tls,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def asgi_server(transactional_db, monkeypatch):
    with serve_asgi(monkeypatch) as port:
        yield f"http://127.0.0.1:{port}"


@pytest.fixture
def asgi_tls_server(transactional_db, monkeypatch, tmp_path):
    """The same over HTTPS, with a certificate from a throwaway CA.  Yields the base
    URL and an SSL context that trusts that CA, for clients that insist on https."""
    import ssl

    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.private_key_pem.write_to_path(tmp_path / "key.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "cert.pem")
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    with serve_asgi(
        monkeypatch, ssl_keyfile=str(tmp_path / "key.pem"), ssl_certfile=str(tmp_path / "cert.pem")
    ) as port:
        yield f"https://127.0.0.1:{port}", client_context


@pytest.fixture(scope="session")
def browser_type_launch_args():
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(chromium).exists():
        pytest.skip("Debian's chromium is not installed (make test installs it where it can)")
    return {
        "executable_path": chromium,
        "args": [
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
        ],
    }


def pytest_collection_modifyitems(items):
    """Run browser tests last.  Playwright's sync API keeps an asyncio loop running in
    the main thread from its first use until the session ends (pytest-playwright's
    `playwright` fixture is session-scoped), and Django then refuses ORM calls as
    async-unsafe in every test that comes after."""
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)  # stable


def process_env(**extra) -> dict:
    """The environment of a child process (a worker, a command) working on this test
    run's database, Redis and keys, as a process of the deployment would."""
    url = urlsplit(os.environ["DATABASE_URL"])
    return {
        **os.environ,
        "DATABASE_URL": urlunsplit(url._replace(path="/" + connection.settings_dict["NAME"])),
        "REDIS_URL": os.environ["REDIS_URL"],
        "SECRET_KEY": settings.SECRET_KEY,
        "ENCRYPTION_KEYS": ",".join(settings.ENCRYPTION_KEYS),
        "WEBHOOK_ALLOWED_NETWORKS": ",".join(settings.WEBHOOK_ALLOWED_NETWORKS),
        "DJANGO_SETTINGS_MODULE": "incident_manager.settings",
        **extra,
    }
