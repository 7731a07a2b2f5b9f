"""ingest(): AlertEvents in, incidents out, in one transaction.

A firing event joins the open incident that holds its dedup key (level 1), else
the open incident of its grouping rule's key if that one had an alert within the
rule's window (level 2), else it opens a new incident; each alert records which
(Alert.dedup_reason).  Similarity (level 3) and dependencies are checked by the
worker right after commit, before the first page (apps/incidents/settle.py).

Races are settled by advisory locks on the keys (apps/incidents/dedup.py), taken
for the whole request at once in ascending order.  A request whose events all
fire again keys that route to open incidents (most of a storm) takes the locks
shared and is stored by one call of a database function (_append_repeats;
docs/adr/0008).
Any other request takes them exclusively, and its firing events are folded in
with a fixed number of statements whatever their count (keys looked up together,
incidents and keys inserted in bulk, alerts stored and counted by one statement):
an Alertmanager group of 300 alerts costs about as many round trips as one alert.
"""

from dataclasses import dataclass
from datetime import timedelta

import orjson
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.audit.services import Actor
from incident_manager import redis_outage

from . import dedup, identity, lifecycle, live, maintenance, prepared, service_settings, services, tasks
from .events import AlertEvent
from .models import Alert, DedupReason, Incident, IncidentKey


@dataclass(frozen=True)
class IngestResult:
    alert_id: int
    incident_id: int | None
    incident_number: int | None
    deduplicated: bool
    # "created", "appended", "acknowledged", "resolved", "alert_resolved" or "ignored"
    action: str

    def as_dict(self) -> dict:
        return {
            "alert": self.alert_id,
            "incident": self.incident_id,
            "incident_number": self.incident_number,
            "deduplicated": self.deduplicated,
            "action": self.action,
        }


def ingest(events: list[AlertEvent], *, service_id: int, integration_id: int | None, actor: Actor) -> list[IngestResult]:
    """Store every event as an Alert and fold it into an incident; all or nothing.

    Firing events are folded in first, then resolve/acknowledge events in the
    order sent (a sender never fires and resolves one key in one request)."""
    return dedup.retrying_deadlocks(
        lambda: _ingest(events, service_id=service_id, integration_id=integration_id, actor=actor)
    )


def ingest_routed(events: list[AlertEvent], service_ids: list[int], *, integration_id: int | None,
                  actor: Actor) -> list[IngestResult]:
    """Events that an integration's routes sent to services (`service_ids[i]` takes
    `events[i]`): each service's share folded in as ingest() folds it, all in one
    transaction, the services in id order (so two requests lock their keys in the
    same order); the results in the order sent."""
    shares: dict[int, list[int]] = {}
    for i, service_id in enumerate(service_ids):
        shares.setdefault(service_id, []).append(i)
    if len(shares) == 1:
        return ingest(events, service_id=service_ids[0], integration_id=integration_id, actor=actor)

    def fold_all():
        results: list[IngestResult | None] = [None] * len(events)
        with transaction.atomic():
            for service_id in sorted(shares):
                share = shares[service_id]
                folded = _ingest([events[i] for i in share], service_id=service_id, integration_id=integration_id, actor=actor)
                for i, result in zip(share, folded):
                    results[i] = result
        return results

    return dedup.retrying_deadlocks(fold_all)


def _ingest(events, *, service_id, integration_id, actor) -> list[IngestResult]:
    now = timezone.now()
    results = None
    if all(e.status == Alert.Status.FIRING for e in events):
        results = _append_repeats(events, service_id=service_id, integration_id=integration_id, at=now)
    if results is None:
        results = _fold(events, service_id=service_id, integration_id=integration_id, actor=actor, at=now)
    # robust: the alerts are committed whatever happens next; a Redis hiccup must
    # not turn a stored alert into an error for the sender.
    transaction.on_commit(lambda: _publish(results), robust=True)
    return results


def _fold(events, *, service_id, integration_id, actor, at) -> list[IngestResult]:
    """The general path: firing events folded in by their keys and grouping rules,
    then the others applied as lifecycle verbs, under the keys' exclusive locks."""
    config = service_settings.for_service(service_id)
    group_of = {
        i: dedup.group_key(config.grouping_rules, e.labels) for i, e in enumerate(events) if e.status == Alert.Status.FIRING
    }
    results: list[IngestResult | None] = [None] * len(events)
    with transaction.atomic():
        dedup.lock_keys(service_id, [e.dedup_key for e in events] + [key for key, _ in group_of.values() if key])
        firing = [i for i in range(len(events)) if i in group_of]
        for i, result in zip(firing, _fold_firing([events[i] for i in firing], [group_of[i] for i in firing], config,
                                                  service_id=service_id, integration_id=integration_id, actor=actor, at=at)):
            results[i] = result
        if transitions := [e.dedup_key for i, e in enumerate(events) if results[i] is None]:
            dedup.open_routes(service_id, transitions, for_update=True)  # all their incidents, in id order
        for i, event in enumerate(events):
            if results[i] is None:
                results[i] = _transition(event, service_id=service_id, integration_id=integration_id, actor=actor, at=at)
    return results


def _publish(results: list[IngestResult]) -> None:
    """Tell the portal (the lifecycle verbs have already told it about what they
    changed), and hand new incidents to the worker: settle first, then the LLM."""
    created = sorted({r.incident_id for r in results if r.action == "created"})
    appended = sorted({r.incident_id for r in results if r.action == "appended"} - set(created))
    # Through redis_outage: without Redis the alerts are stored all the same, and beat's
    # settle_overdue settles what was not queued here.
    if created:
        redis_outage.attempt("queue settle", tasks.settle.delay, created)
    if settings.ANTHROPIC_API_KEY:
        for incident_id in created:
            redis_outage.attempt("queue second opinion", tasks.second_opinion.delay, incident_id)
    redis_outage.attempt("live update", live.publish_incidents_changed, created=created, appended=appended)
    lifecycle.alerts_appended.send(sender=Incident, incident_ids=appended)


def _append_repeats(events, *, service_id, integration_id, at) -> list[IngestResult] | None:
    """The common case of a storm, in one call of a database function (migration
    incidents 0013): every event fires again a key that routes to an open incident.
    Returns None, having written nothing, when some key does not route, or when one
    of the incidents was resolved before the call could lock it: the caller takes
    the general path.

    Outside a transaction (a web request) the call is one round trip, a transaction
    of its own; inside one it is part of it.  It takes the keys' advisory locks
    first, in the order dedup.lock_keys takes them, so that it cannot deadlock with
    whoever adds or moves keys (the general path, merges, splits, settling), but
    shared: an append changes no route, so appends to the same keys need not wait
    for each other, only for those, which take them exclusively."""
    keys = list({e.dedup_key for e in events})
    rows = [_alert_row(e, None, integration_id, DedupReason.DEDUP_KEY, "") for e in events]
    stored = prepared.run(_APPEND_REPEATS, [dedup.lock_ids(service_id, keys), service_id, keys, _document(rows), at])
    if not stored:
        return None
    return [IngestResult(alert_id, incident_id, number, True, "appended") for alert_id, incident_id, number in stored]


_APPEND_REPEATS = "SELECT * FROM incidents_append_repeats(%s::bigint[], %s::bigint, %s::text[], %s::jsonb, %s)"


@dataclass
class _Target:
    """Where one firing event goes: an open incident, or one this request opens."""

    incident_id: int | None
    number: int | None
    reason: str
    detail: str = ""
    new: "Incident | None" = None


def _fold_firing(events, groups, config, *, service_id, integration_id, actor, at) -> list[IngestResult]:
    if not events:
        return []
    found = dedup.open_routes(service_id, {e.dedup_key for e in events} | {key for key, _ in groups if key})
    routes = found.routes
    opened: dict[str, Incident] = {}  # alert key -> incident this request opens
    opened_groups: dict[str, list[Incident]] = {}  # group key -> incidents this request opens, newest first
    new_keys: list[IncidentKey] = []
    targets: list[_Target] = []
    windows = config.windows_at(at)
    refire = []
    for event, (gkey, rule) in zip(events, groups):
        route = routes.get(event.dedup_key)
        if route is not None:
            targets.append(_Target(route.incident_id, route.number, DedupReason.DEDUP_KEY))
            if not route.firing:
                refire.append(event.dedup_key)
            continue
        if event.dedup_key in opened:
            targets.append(_Target(None, None, DedupReason.DEDUP_KEY, new=opened[event.dedup_key]))
            continue
        group = _Group(None, True, "")
        if gkey:
            group = _group_of(event, gkey, rule, opened_groups.get(gkey, []), found.groups.get(gkey, []),
                              found.apart.get(event.dedup_key, ()), config.identifying, at)
        if isinstance(group.joins, Incident):
            targets.append(_Target(None, None, DedupReason.GROUPING, group.detail, new=group.joins))
            new_keys.append(IncidentKey(service_id=service_id, key=event.dedup_key, incident=group.joins))
            opened[event.dedup_key] = group.joins
            continue
        if group.joins is not None:
            joined = group.joins
            targets.append(_Target(joined.incident_id, joined.number, DedupReason.GROUPING, group.detail))
            new_keys.append(IncidentKey(service_id=service_id, key=event.dedup_key, incident_id=joined.incident_id))
            routes[event.dedup_key] = joined
            continue
        silenced = maintenance.first_match(windows, event.labels)
        # Without similarity or dependencies there is nothing to check before paging.
        incident = services.new_incident(
            title=event.title, description=event.description, severity=event.severity if event.severity_from else None,
            severity_from=event.severity_from, service_id=service_id,
            dedup_key=event.dedup_key, fingerprint=event.fingerprint, labels=event.labels, source=event.source,
            alert_count=0,  # counted as its alerts are stored (_store_alerts)
            first_alert_at=at, last_alert_at=at, settling=config.settle_first and silenced is None,
        )
        targets.append(_Target(None, None, DedupReason.OPENED, group.detail, new=incident))
        opened[event.dedup_key] = incident
        new_keys.append(IncidentKey(service_id=service_id, key=event.dedup_key, incident=incident))
        if gkey and group.takes_over:
            opened_groups.setdefault(gkey, []).insert(0, incident)
            new_keys.append(IncidentKey(service_id=service_id, key=gkey, kind=IncidentKey.Kind.GROUP, incident=incident))

    new_incidents = list({id(i): i for i in opened.values()}.values())
    Incident.objects.bulk_create(new_incidents)  # one INSERT, returning ids and numbers
    IncidentKey.objects.bulk_create(new_keys, ignore_conflicts=True)
    _refire_keys(service_id, refire)

    alert_ids = _store_alerts(
        [
            _alert_row(event, (t.new.pk if t.new else t.incident_id), integration_id, t.reason, t.detail)
            for event, t in zip(events, targets)
        ],
        at,
    )
    _opened(new_incidents, events, alert_ids, targets, actor=actor, windows=windows, at=at)
    return [
        IngestResult(
            alert_id,
            t.new.pk if t.new else t.incident_id,
            t.new.number if t.new else t.number,
            t.reason != DedupReason.OPENED,
            "created" if t.reason == DedupReason.OPENED else "appended",
        )
        for alert_id, t in zip(alert_ids, targets)
    ]


@dataclass(frozen=True)
class _Group:
    """What a firing event's grouping rule does with it."""

    joins: "dedup.OpenRoute | Incident | None"  # an open incident, one this request opens, or none
    takes_over: bool  # if none: the incident it opens takes the group key
    detail: str  # the alert's reason


def _group_of(event, gkey, rule, opened_here, open_ones, apart, names, at) -> _Group:
    """The incident of the event's group it joins: the newest one whose opening alert
    does not disagree with it on an identifying label (identity.py), so that one
    group key holds one incident per service, cluster or tenant.  That one must have
    had an alert within the rule's window; else the new incident takes the group
    over.  An alert split out of an incident does not join it again, nor take its
    group over."""
    refused = ""
    for candidate in [*opened_here, *open_ones]:
        labels = candidate.labels if isinstance(candidate, Incident) else (candidate.labels or {})
        if clash := identity.conflict(event.labels, labels, names):
            name, ours, theirs = clash
            which = f"#{candidate.number}" if not isinstance(candidate, Incident) else "an incident of this request"
            refused = refused or (f"grouping rule “{rule.name}” would join {which}, but {name} differs "
                                  f"({ours} ≠ {theirs}): kept apart")
            continue
        grouped = f"{_grouped(rule)}; {identity.checked(names, event.labels)}"
        if isinstance(candidate, Incident):
            return _Group(candidate, False, grouped)
        if candidate.last_alert_at < at - timedelta(minutes=rule.window_minutes):
            return _Group(None, True, refused)  # quiet for longer than the window
        if candidate.incident_id in apart:
            return _Group(None, False, refused)
        return _Group(candidate, False, grouped)
    return _Group(None, True, refused)


def _grouped(rule) -> str:
    return f"grouping rule “{rule.name}”: same {', '.join(rule.group_by)} within {rule.window_minutes} min"


def _refire_keys(service_id: int, keys: list[str]) -> None:
    """Keys their sender had resolved fire again inside still-open grouped incidents."""
    if keys:
        IncidentKey.objects.filter(service_id=service_id, key__in=keys, firing=False).exclude(
            kind=IncidentKey.Kind.APART
        ).exclude(incident__status=Incident.Status.RESOLVED).update(firing=True)


def _opened(incidents: list[Incident], events, alert_ids, targets: list[_Target], *, actor, windows, at) -> None:
    """The new incidents' first alerts, for their audit entries (services.opened)."""
    triggered = {}
    for event, alert_id, t in zip(events, alert_ids, targets):
        if t.new is not None and t.new.pk not in triggered:
            triggered[t.new.pk] = {"alert": alert_id, "dedup_key": event.dedup_key, "severity": t.new.severity,
                                   "severity_reason": services.severity_reason(t.new, event.severity_from)}
    services.opened(incidents, triggered=triggered, actor=actor, windows=windows, at=at)


_ALERT_COLUMNS = (
    "incident_id", "integration_id", "source", "status", "title", "severity", "dedup_key", "fingerprint",
    "group_key", "labels", "payload", "deduplicated", "dedup_reason", "dedup_detail", "route", "starts_at",
)


def _alert_row(event: AlertEvent, incident_id, integration_id, reason, detail) -> dict:
    """An Alert's values by column, as JSON (a storm's alerts are never model
    instances, which cost more to build than to store)."""
    return {
        "incident_id": incident_id, "integration_id": integration_id, "source": event.source, "status": event.status,
        "title": event.title, "severity": event.severity, "dedup_key": event.dedup_key, "fingerprint": event.fingerprint,
        "group_key": event.group_key, "labels": event.labels, "payload": event.payload,
        "deduplicated": reason != DedupReason.OPENED, "dedup_reason": reason, "dedup_detail": detail[:300],
        "route": event.route, "starts_at": event.starts_at,
    }


def _document(rows: list[dict]) -> str:
    # orjson: a storm's rows are most of what the web process spends on a request.
    return orjson.dumps(rows).decode()


# Stores the alerts of the JSON document %(alerts)s (_alert_row objects) and adds
# them to the alert_count and last_alert_at of their incidents; returns, for each
# alert in order, its id and its incident's id and number.  The incidents are locked
# last, in id order (as dedup.open_routes and the append function lock them), so
# that requests counting alerts on the same incidents cannot deadlock.  The
# data-modifying WITH queries run whether or not the final SELECT reads them;
# `counted` reads what `stored` returns, so it runs after the insert.
_STORE_ALERTS = f"""
    WITH new AS (
        SELECT nextval(pg_get_serial_sequence('incidents_alert', 'id')) AS id, e.n,
               {", ".join(f"r.{c}" for c in _ALERT_COLUMNS)}
          FROM jsonb_array_elements(%(alerts)s::jsonb) WITH ORDINALITY AS e(alert, n),
               jsonb_populate_record(NULL::incidents_alert, e.alert) AS r
    ), stored AS (
        INSERT INTO incidents_alert (id, received_at, {", ".join(_ALERT_COLUMNS)})
        SELECT id, %(at)s, {", ".join(_ALERT_COLUMNS)} FROM new
        RETURNING incident_id
    ), counted AS (
        UPDATE incidents_incident i
           SET alert_count = i.alert_count + c.n, last_alert_at = GREATEST(i.last_alert_at, %(at)s), updated_at = %(at)s
          FROM (SELECT incident_id, count(*) AS n FROM stored WHERE incident_id IS NOT NULL GROUP BY incident_id) AS c,
               (SELECT id FROM incidents_incident WHERE id IN (SELECT incident_id FROM stored)
                 ORDER BY id FOR NO KEY UPDATE) AS l
         WHERE i.id = c.incident_id AND i.id = l.id
    )
    SELECT new.id, new.incident_id, (SELECT number FROM incidents_incident WHERE id = new.incident_id)
      FROM new ORDER BY new.n
    """


def _store_alerts(rows: list[dict], at) -> list[int]:
    """Store the alerts and count them on their incidents, in one round trip for any
    number (the rows travel as one JSON document); returns their ids, in order."""
    return [pk for pk, _, _ in prepared.run(_STORE_ALERTS, {"at": at, "alerts": _document(rows)})]


def _transition(event: AlertEvent, *, service_id, integration_id, actor, at) -> IngestResult:
    """A sender's "resolved" (or "acknowledged") for its key, applied through the
    lifecycle verbs like anyone else's.  An incident that holds several alert keys
    (grouped or merged) resolves when the last of them is resolved."""
    route = dedup.open_route(service_id, event.dedup_key)
    incident = route and Incident.objects.select_for_update().get(pk=route.incident_id)
    # The alert is kept in any case, on the open incident of the key or else the latest one.
    target = incident or getattr(dedup.latest_route(service_id, event.dedup_key), "incident", None)
    (alert_id,) = _store_alerts([_alert_row(event, target and target.pk, integration_id, DedupReason.DEDUP_KEY, "")], at)
    acknowledging = event.status == Alert.Status.ACKNOWLEDGED
    if incident is None or (acknowledging and incident.status != Incident.Status.TRIGGERED):
        # Nothing to change: never seen, already resolved, or already acknowledged.
        return IngestResult(alert_id, target and target.pk, target and target.number, target is not None, "ignored")
    if acknowledging:
        services.acknowledge(incident, actor=actor)
        return IngestResult(alert_id, incident.pk, incident.number, True, "acknowledged")
    IncidentKey.objects.filter(pk=route.pk).update(firing=False)
    if incident.keys.filter(kind=IncidentKey.Kind.ALERT, firing=True).exists():
        return IngestResult(alert_id, incident.pk, incident.number, True, "alert_resolved")
    services.resolve(incident, actor=actor, reason="resolved by the sender")
    return IngestResult(alert_id, incident.pk, incident.number, True, "resolved")
