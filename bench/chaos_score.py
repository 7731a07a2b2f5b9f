"""Scoring a chaos run (bench/chaos.py): what was due against what happened, per fault.

Alerts.  Three views of the same traffic: Alertmanager's own counters
(alertmanager_notifications_total / _failed_total for the webhook, and from its log how
many alerts each failed notification held), the tap's record of every webhook POST
(alerts in it, our answer, the alert ids a 202 named), and the database (the
incidents_alert rows of the integration).  An alert is lost when an alert episode the
storm posted to Alertmanager (labels + startsAt) has no row at all, or its resolution
no resolved row, by the end of the run; or when a 202 named an alert id that is not in
the database.  Beside the losses: resolutions of an earlier episode filed, late, into a
newer incident of the same fingerprint (which they resolve).

Pages.  What the escalation engine's rules say was due: for each incident, level 0 at
the escalation's start, level k+1 the rule's delay after level k fired (the engine's
rule: "after the previous level"), until the incident was acknowledged or resolved or
the run stopped looking (the cutoff); each level owes one page per target person and
channel.  A page is sent when the fake Slack or Twilio received it (by the Notification
row it came from).  One not received is "moot" when the incident was taken (acknowledged
or resolved) within 10 s of the level falling due, before anyone could be owed it, and
missed otherwise.  A duplicate is a second receipt of the same row (rows are unique per
incident, cycle, level, person and channel: their idempotency key).

Each page is charged to the last fault that struck between its due time and its fate
(receipt, or the incident's end): a level due just before a fault and held up by it
counts against that fault.

Lag.  For each page, the fake's first receipt minus the later of its due time and the
recovery of the fault it is charged to ("how long after things were back did the person
get a page owed to them"; 0 for a page received before the recovery, as the other
instance sends them).  Beside it: the plain lag (receipt minus due) and the engine's part
(Notification.created_at minus due).
"""

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from chaos_storm import iso

LAG_TARGET = 10.0  # seconds after recovery
AM_DEADLINE = 10.0  # Alertmanager gives a notification this long (max(group_interval, 10 s)) with its retries
MOOT_WITHIN = 10.0  # an incident taken this soon after a level fell due did not owe that level a page


@dataclass
class Window:
    name: str
    title: str
    start: float
    recovered: float
    end: float
    blow: float = 0.0  # when the fault struck (the window starts when it began aiming)
    landed: list[str] = field(default_factory=list)
    mid_delivery_kills: int = 0
    interrupted_sends: int = 0
    am: dict = field(default_factory=dict)  # Alertmanager's counters over the window


def window_of(windows: list[Window], at: float) -> Window | None:
    for w in windows:
        if w.start <= at < w.end:
            return w
    return None


def quantiles(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    values = sorted(values)
    if len(values) == 1:
        return values[0], values[0], values[0]
    q = statistics.quantiles(values, n=100, method="inclusive")
    return q[49], q[98], values[-1]


def ts(moment) -> float | None:
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    return moment.timestamp()


# ----- alerts ---------------------------------------------------------------------------------


def load_alert_rows(integration_id: int) -> list[tuple]:
    """(id, (service, alertname, instance), status, startsAt second, received_at) of every stored alert."""
    from apps.incidents.models import Alert

    rows = Alert.objects.filter(integration_id=integration_id).values_list(
        "id", "labels__service", "labels__alertname", "labels__instance", "status", "starts_at", "received_at")
    return [(pk, (s, a, i), status, round(ts(starts)) if starts else None, ts(received))
            for pk, s, a, i, status, starts, received in rows]


def score_alerts(windows, webhooks, episodes, t0: float, rows, am_failures, stale, cutoff) -> dict[str, dict]:
    ids = {row[0] for row in rows}
    seen = defaultdict(set)  # (key, startsAt) -> statuses stored
    for _pk, key, status, starts, _received in rows:
        seen[(key, starts)].add(status)
    out = {w.name: defaultdict(int, {"errors": defaultdict(int), "keys": set(), "lost_examples": []}) for w in windows}

    for record in webhooks:
        # By when it ended: a POST cut by a kill began just before the fault's window.
        w = window_of(windows, record.ended or record.started)
        if w is None:
            continue
        s = out[w.name]
        s["posts"] += 1
        s["alerts_sent"] += len(record.alerts)
        took = (record.ended or record.started) - record.started
        s["slowest"] = max(s["slowest"], took)
        s["slow"] += took > AM_DEADLINE
        if record.status == 202:
            s["answered_202"] += 1
            s["alerts_202"] += len(record.alerts)
            missing = [pk for pk in record.alert_ids if pk not in ids]
            s["lost_202"] += len(missing)
        elif record.status is None:
            s["cut"] += 1
            s["errors"][record.error.split(":")[0]] += 1
        else:
            s["answered_4xx" if record.status < 500 else "answered_5xx"] += 1
            s["errors"][str(record.status)] += 1

    for _pk, key, _status, _starts, received in rows:
        w = window_of(windows, received)
        if w:
            out[w.name]["rows"] += 1
            out[w.name]["keys"].add(key)

    for episode in episodes:
        if episode.first_posted is None or episode.first_posted > cutoff:
            continue
        starts = round(t0) + episode.start
        statuses = seen.get((episode.key, starts), set())
        if not statuses:
            w = window_of(windows, episode.first_posted)
            if w:
                out[w.name]["lost_firing"] += 1
                out[w.name]["lost_examples"].append(f"{'/'.join(episode.key)} from {iso(starts)}: no row")
        if episode.resolve_posted and episode.resolve_posted <= cutoff and "resolved" not in statuses:
            w = window_of(windows, episode.resolve_posted)
            if w:
                out[w.name]["lost_resolve"] += 1
                out[w.name]["lost_examples"].append(
                    f"{'/'.join(episode.key)} from {iso(starts)}: resolution never stored")

    for incident, at in stale.items():
        w = window_of(windows, at)
        if w:
            out[w.name]["stale_resolutions"] += 1
            out[w.name]["lost_examples"].append(f"incident {incident} resolved by an earlier episode's resolution")
    for at, alerts, error in am_failures:
        w = window_of(windows, at)
        if w:
            out[w.name]["am_failed_alerts"] += alerts
            out[w.name].setdefault("am_errors", []).append(error)
    for s in out.values():
        s["distinct"] = len(s.pop("keys"))
        s["lost"] = s["lost_firing"] + s["lost_resolve"] + s["lost_202"]
    return out


def stale_resolutions(integration_id: int) -> dict[int, float]:
    """Incidents a resolved alert of an earlier episode was filed into (its startsAt older
    than every firing alert of the incident): a late, out-of-order resolution, which
    resolves a newer incident of the same fingerprint.  incident -> when it arrived."""
    from django.db.models import Min

    from apps.incidents.models import Alert

    alerts = Alert.objects.filter(integration_id=integration_id)
    first_firing = dict(alerts.filter(status="firing").values("incident_id").annotate(first=Min("starts_at"))
                        .values_list("incident_id", "first"))
    stale = {}
    for incident, starts, received in alerts.filter(status="resolved").values_list("incident_id", "starts_at", "received_at"):
        first = first_firing.get(incident)
        if first and starts and starts < first:
            stale[incident] = min(stale.get(incident, float("inf")), ts(received))
    return stale


# ----- pages ----------------------------------------------------------------------------------


@dataclass
class Page:
    incident: int
    level: int
    user: int
    channel: str
    due: float
    row: dict | None
    stop: float | None  # acknowledged or resolved
    receipts: list[float] = field(default_factory=list)

    @property
    def sent(self) -> float | None:
        return min(self.receipts) if self.receipts else None

    @property
    def verdict(self) -> str:
        if self.receipts:
            return "sent"
        if self.stop is not None and self.stop <= self.due + MOOT_WITHIN:
            return "moot"
        return "missed"


def _policies() -> dict[int, list[tuple[int, float, list[int], list[str]]]]:
    """policy -> its levels: (position, delay in s, target users, channels)."""
    from apps.accounts.models import Membership
    from apps.escalation.models import EscalationRule

    levels = defaultdict(list)
    for rule in EscalationRule.objects.prefetch_related("users", "teams").order_by("policy_id", "position", "pk"):
        users = {u.pk for u in rule.users.all()}
        for team in rule.teams.all():
            users |= set(Membership.objects.filter(team=team, user__is_active=True).values_list("user_id", flat=True))
        levels[rule.policy_id].append((rule.position, rule.delay_minutes * 60.0, sorted(users), list(rule.channels)))
    return levels


def expected_pages(cutoff: float) -> tuple[list[Page], list[dict]]:
    """Every page the rules say was due by `cutoff`, with the row written for it; and the
    escalation rows no rule asked for (should be none)."""
    from apps.escalation.models import EscalationState
    from apps.incidents.models import Incident
    from apps.notifications.models import Notification

    levels = _policies()
    incidents = {i["id"]: i for i in Incident.objects.values("id", "acknowledged_at", "resolved_at")}
    rows = defaultdict(dict)  # (incident, cycle, level) -> (user, channel) -> row
    for row in Notification.objects.filter(recipient__isnull=False, fallback_of__isnull=True).values(
            "id", "incident_id", "recipient_id", "channel", "status", "reason", "created_at", "delivered_at",
            "attempts", "possible_duplicate", "last_error"):
        reason = row["reason"] or {}
        if "level" in reason:
            rows[(row["incident_id"], reason.get("cycle", 0), reason["level"])][(row["recipient_id"], row["channel"])] = row
    pages, claimed = [], set()
    for state in EscalationState.objects.values("incident_id", "policy_id", "started_at", "level", "next_at", "status"):
        incident = incidents[state["incident_id"]]
        stop = min(filter(None, [ts(incident["acknowledged_at"]), ts(incident["resolved_at"])]), default=None)
        due, fired = ts(state["started_at"]), None
        for k, (_position, delay, users, channels) in enumerate(levels[state["policy_id"]]):
            level_rows = rows.get((state["incident_id"], 0, k), {})
            if level_rows:
                due = ts(next(iter(level_rows.values()))["reason"]["due_at"])
            elif k > 0 and state["level"] == k and state["next_at"]:
                due = ts(state["next_at"])
            elif k > 0:
                due = (fired or due) + delay  # the previous level's tick, or its due time if it never fired
            if due > cutoff or (stop is not None and stop <= due):
                break
            for user in users:
                for channel in channels:
                    row = level_rows.get((user, channel))
                    pages.append(Page(state["incident_id"], k, user, channel, due, row, stop))
                    claimed.add((state["incident_id"], 0, k, user, channel))
            fired = min((ts(r["created_at"]) for r in level_rows.values()), default=None)
    extra = [row for (incident, cycle, level), by in rows.items() for (user, channel), row in by.items()
             if (incident, cycle, level, user, channel) not in claimed and ts(row["created_at"]) <= cutoff]
    return pages, extra


def attach_receipts(pages: list[Page], received) -> dict[int, list[float]]:
    """Receipts at the fakes by Notification row; returns them for the duplicate count."""
    by_row = defaultdict(list)
    for r in received:
        if r.notification:
            by_row[r.notification].append(r.at)
    for page in pages:
        if page.row:
            page.receipts = sorted(by_row.get(page.row["id"], []))
    return by_row


def struck_by(windows, page: Page, end: float) -> Window | None:
    """The window a page is charged to: the last fault to strike between the page's due
    time and its fate (its receipt; else the incident's end; else `end`), or the window it
    fell due in.  A level due just before a fault and held up by it (pages wait about 5 s
    for the delivery sweep) counts against that fault, not the one before."""
    own = window_of(windows, page.due)
    if own is None:
        return None
    settled = page.sent or page.stop or end
    struck = [w for w in windows if own.start <= w.start and w.blow <= settled]
    return struck[-1] if struck else own


def score_pages(windows, pages: list[Page], by_row: dict[int, list[float]], announcements, end: float) -> dict[str, dict]:
    out = {w.name: defaultdict(int, {"late": [], "plain": [], "engine": [], "missed_examples": [], "moot_examples": [],
                                       "latest": []})
           for w in windows}
    page_of_row = {p.row["id"]: p for p in pages if p.row}
    for page in pages:
        w = struck_by(windows, page, end)
        if w is None:
            continue
        s = out[w.name]
        s["due"] += 1
        s["rows"] += page.row is not None
        s["delivered"] += bool(page.row and page.row["status"] == "delivered")
        s[page.verdict] += 1
        row = page.row
        state = f"row {row['id']} {row['status']}, {row['attempts']} attempts, {row['last_error'][:60]!r}" if row else "no row"
        taken = f"; taken {page.stop - page.due:.1f} s after due" if page.stop else ""
        if page.verdict in ("missed", "moot"):
            s[f"{page.verdict}_examples"].append(
                f"incident {page.incident} level {page.level} user {page.user} {page.channel}: {state}{taken}")
        if page.sent:
            # Sent before the recovery (by the other instance, or before the fault bit): not late for it.
            late = max(0.0, page.sent - max(page.due, w.recovered))
            s["late"].append(late)
            s["plain"].append(page.sent - page.due)
            s["latest"].append((late, page))
        if row:
            s["engine"].append(ts(row["created_at"]) - page.due)
    # A duplicate is charged to the window in which the second copy arrived.
    for row_id, times in by_row.items():
        for extra in sorted(times)[1:]:
            w = window_of(windows, extra)
            if w:
                kind = "dup_pages" if row_id in page_of_row else "dup_announcements"
                out[w.name][kind] += 1
                if row_id in page_of_row:
                    out[w.name]["dup_flagged"] += bool(page_of_row[row_id].row["possible_duplicate"])
    for s in out.values():
        s["latest"] = [describe_late(late, page) for late, page in sorted(s["latest"], key=lambda x: -x[0])[:3]]
    for ann in announcements:
        w = window_of(windows, ann["due"])
        if w:
            s = out[w.name]
            s["ann_due"] += 1
            s["ann_received"] += bool(by_row.get(ann["id"]))
            if not by_row.get(ann["id"]):
                s["ann_missing"] += 1
    return out


def describe_late(late: float, page: Page) -> str:
    row = page.row
    written = ts(row["created_at"]) - page.due
    delivered = f", delivered {ts(row['delivered_at']) - page.due:.1f} s" if row.get("delivered_at") else ""
    return (f"{late:.1f} s: incident {page.incident} level {page.level} {page.channel} to user {page.user}: "
            f"row {written:.1f} s after due{delivered}, received {page.sent - page.due:.1f} s after due")


def announcements(cutoff: float) -> list[dict]:
    """The channel announcements written by `cutoff`: one per incident and Slack channel."""
    from apps.notifications.models import Notification

    rows = Notification.objects.filter(reason__has_key="announce", fallback_of__isnull=True).values("id", "incident_id", "created_at")
    return [{"id": r["id"], "incident": r["incident_id"], "due": ts(r["created_at"])} for r in rows if ts(r["created_at"]) <= cutoff]


def unannounced(cutoff: float) -> list[int]:
    """Incidents opened (and settled, unmerged) by the cutoff that no announcement row exists for."""
    from apps.incidents.models import Incident
    from apps.notifications.models import Notification

    announced = set(Notification.objects.filter(reason__has_key="announce").values_list("incident_id", flat=True))
    incidents = Incident.objects.filter(merged_into__isnull=True, settling=False).values_list("id", "created_at")
    return [pk for pk, created in incidents if ts(created) <= cutoff - 30 and pk not in announced]
