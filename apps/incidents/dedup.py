"""Dedup levels 1 and 2: the keys that say which open incident an alert joins.

Level 1 is the alert's own dedup key (the sender's, or its fingerprint); level 2 is
the key of the first grouping rule of the service whose labels the alert carries.
Keys live in IncidentKey rows.  Whoever adds or moves a key first takes a
transaction-scoped advisory lock on it (lock_keys), always in ascending order, so
two requests racing on one key serialise instead of opening two incidents, and
requests with overlapping keys cannot deadlock.  Appending alerts to where keys
already route takes the same locks shared (docs/adr/0008).  (Level 3, similarity,
runs in the worker: apps/incidents/settle.py.)
"""

import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

import orjson

from django.db import OperationalError, connection

from . import prepared
from .models import GroupingRule, IncidentKey

log = logging.getLogger(__name__)

DEADLOCK_ATTEMPTS = 3


def _lock_id(service_id: int, key: str) -> int:
    digest = hashlib.blake2b(f"{service_id}\x1f{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def lock_ids(service_id: int, keys) -> list[int]:
    """The keys' advisory lock ids, in the order they are taken."""
    return sorted({_lock_id(service_id, key) for key in keys})


def lock_keys(service_id: int, keys) -> None:
    """Hold every key, exclusively, until the transaction ends (one round trip), to
    add or move keys.  (Appends take them shared: ingest._append_repeats.)"""
    if ids := lock_ids(service_id, keys):
        prepared.run("SELECT count(pg_advisory_xact_lock(id)) FROM unnest(%s::bigint[]) AS id", [ids])


def retrying_deadlocks(work):
    """Run `work()` (a transaction of its own), again if PostgreSQL broke a deadlock
    by aborting it.  The lock order above makes deadlocks rare, not impossible: a
    merge or split from the portal reads an incident's keys before locking them,
    and may lock one added in between out of order.  The aborted side has written
    nothing, so it can run again."""
    for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
        try:
            return work()
        except OperationalError as exc:
            if connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS or getattr(exc.__cause__, "sqlstate", "") != "40P01":
                raise
            log.warning("deadlock broken by PostgreSQL; running again (attempt %s)", attempt + 1)


def grouping_rules(service_id: int) -> list[GroupingRule]:
    return list(GroupingRule.objects.filter(service_id=service_id, is_active=True))


def group_key(rules: list[GroupingRule], labels: dict[str, str]) -> tuple[str, GroupingRule] | tuple[None, None]:
    for rule in rules:
        if key := rule.key_for(labels):
            return key, rule
    return None, None


@dataclass(frozen=True)
class OpenRoute:
    incident_id: int
    number: int
    last_alert_at: datetime
    firing: bool  # of the key: false once its sender has resolved it
    labels: dict | None = None  # the incident's, read for group keys (identity.py)


class OpenRoutes(NamedTuple):
    routes: dict[str, OpenRoute]  # key -> its open incident (the newest, for a group key)
    apart: dict[str, set[int]]  # key -> the open incidents it was split out of
    groups: dict[str, list[OpenRoute]]  # group key -> all its open incidents, newest first


def open_routes(service_id: int, keys, *, for_update: bool = False) -> OpenRoutes:
    """The open incident of each key, with its row locked in id order (so that two
    requests cannot take two incidents in opposite orders): as an alert append
    locks it (FOR NO KEY UPDATE, which escalation's KEY SHARE does not wait for),
    or FOR UPDATE where a lifecycle verb will follow.  A group key may have several
    open incidents, one per identity its alerts carry (identity.py)."""
    strength = "UPDATE" if for_update else "NO KEY UPDATE"
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT k.key, k.kind, k.firing, i.id, i.number, i.last_alert_at,
                   CASE WHEN k.kind = 'group' THEN i.labels END
              FROM incidents_incidentkey k JOIN incidents_incident i ON i.id = k.incident_id
             WHERE k.service_id = %s AND k.key = ANY(%s) AND i.status <> 'resolved'
             ORDER BY i.id
               FOR {strength} OF i
            """,
            [service_id, list(keys)],
        )
        found = OpenRoutes({}, {}, {})
        for key, kind, firing, pk, number, last, labels in cursor.fetchall():
            if kind == IncidentKey.Kind.APART:
                found.apart.setdefault(key, set()).add(pk)
                continue
            if isinstance(labels, str):  # jsonb arrives as text on Django's connections
                labels = orjson.loads(labels)
            route = OpenRoute(pk, number, last, firing, labels)
            # Rows come oldest first: the newest wins.
            found.routes[key] = route
            if kind == IncidentKey.Kind.GROUP:
                found.groups.setdefault(key, []).insert(0, route)
        return found


def open_route(service_id: int, key: str) -> IncidentKey | None:
    return (
        IncidentKey.objects.select_related("incident")
        .filter(service_id=service_id, key=key)
        .exclude(kind=IncidentKey.Kind.APART)
        .exclude(incident__status="resolved")
        .order_by("-incident_id")
        .first()
    )


def latest_route(service_id: int, key: str) -> IncidentKey | None:
    return (
        IncidentKey.objects.select_related("incident")
        .filter(service_id=service_id, key=key)
        .exclude(kind=IncidentKey.Kind.APART)
        .order_by("-incident_id")
        .first()
    )
