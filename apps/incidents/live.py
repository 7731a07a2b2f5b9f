"""Live updates: tell the open portal pages that may show an incident that it changed.

Messages go through the Channels layer (Redis), so a change made in any process,
web or Celery worker, reaches the websocket consumers in the ASGI process.  Lists
listen to their viewer's teams' groups (organisation admins to every team's), an
incident's page to that incident's: another team's changes never reach a page.
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

from . import throttle
from .models import Incident

log = logging.getLogger(__name__)

EVERY_TEAM_GROUP = "incidents"  # organisation admins' lists
# A storm of repeats of one alert updates its incident's pages at most this often.
THROTTLE_SECONDS = 2
SEND_TIMEOUT = 5  # seconds; a live update is best-effort, the page also refreshes on reconnect

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def incident_group(incident_id: int) -> str:
    return f"incident-{incident_id}"


def team_group(team_id: int) -> str:
    return f"incidents-team-{team_id}"


def _teams(incident_ids) -> dict[int, int]:
    return dict(Incident.objects.filter(pk__in=incident_ids).values_list("pk", "service__team_id"))


def publish_incident_changed(incident_id: int, *, created: bool = False) -> None:
    message = {"type": "incident.changed", "id": incident_id, "created": created}
    if (team_id := _teams([incident_id]).get(incident_id)) is None:
        return  # deleted meanwhile
    groups = [EVERY_TEAM_GROUP, team_group(team_id), incident_group(incident_id)]
    future = asyncio.run_coroutine_threadsafe(_send(groups, message), _publisher_loop())
    future.result(timeout=SEND_TIMEOUT)


def publish_incidents_changed(*, created: list[int], appended: list[int]) -> None:
    """What one ingest request changed, in one hand-over to the publisher loop.

    Appended alerts come in floods: at most one update per incident per
    THROTTLE_SECONDS for those (the pages re-fetch the incident, so they miss nothing
    lasting beyond that).  The throttle is one Redis round trip for the whole request."""
    taken = set(throttle.first_in_window([f"live:{pk}" for pk in appended], THROTTLE_SECONDS))
    due = [pk for pk in appended if f"live:{pk}" in taken]
    teams = _teams([*created, *due]) if created or due else {}
    # Nobody has the page of an incident that did not exist a moment ago: lists only.
    sends = [([EVERY_TEAM_GROUP, team_group(teams[pk])], {"type": "incident.changed", "id": pk, "created": True})
             for pk in created if pk in teams]
    sends += [
        ([EVERY_TEAM_GROUP, team_group(teams[pk]), incident_group(pk)], {"type": "incident.changed", "id": pk, "created": False})
        for pk in due if pk in teams
    ]
    if sends:
        # Not waited for: the sender's answer must not wait on the portal's pages.
        future = asyncio.run_coroutine_threadsafe(_send_all(sends), _publisher_loop())
        future.add_done_callback(_log_failure)


def _log_failure(future) -> None:
    if exc := future.exception():
        log.warning("live update not sent: %r", exc)


async def _send(groups, message):
    layer = get_channel_layer()
    for group in groups:
        await layer.group_send(group, message)


async def _send_all(sends):
    for groups, message in sends:
        await _send(groups, message)


def _publisher_loop() -> asyncio.AbstractEventLoop:
    """One event loop per process, in a daemon thread, reused for every publish.

    async_to_sync would start a new loop (and thread) per call, and channels_redis
    keeps its Redis connections per loop: every update would reconnect to Redis.
    Keyed by pid because gunicorn and Celery fork their workers.
    """
    global _loop, _loop_pid
    with _loop_lock:
        if _loop is None or _loop_pid != os.getpid():
            _loop = asyncio.new_event_loop()
            _loop_pid = os.getpid()
            threading.Thread(target=_loop.run_forever, name="live-publisher", daemon=True).start()
        return _loop
