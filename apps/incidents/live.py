"""Live updates: tell every open portal page that an incident changed.

Messages go through the Channels layer (Redis), so a change made in any process,
web or Celery worker, reaches the websocket consumers in the ASGI process.
"""

import asyncio
import logging
import os
import threading

from channels.layers import get_channel_layer

from . import throttle

log = logging.getLogger(__name__)

LIST_GROUP = "incidents"
# A storm of repeats of one alert updates its incident's pages at most this often.
THROTTLE_SECONDS = 2
SEND_TIMEOUT = 5  # seconds; a live update is best-effort, the page also refreshes on reconnect

_loop: asyncio.AbstractEventLoop | None = None
_loop_pid: int | None = None
_loop_lock = threading.Lock()


def incident_group(incident_id: int) -> str:
    return f"incident-{incident_id}"


def publish_incident_changed(incident_id: int, *, created: bool = False) -> None:
    message = {"type": "incident.changed", "id": incident_id, "created": created}
    future = asyncio.run_coroutine_threadsafe(
        _send([LIST_GROUP, incident_group(incident_id)], message), _publisher_loop()
    )
    future.result(timeout=SEND_TIMEOUT)


def publish_incidents_changed(*, created: list[int], appended: list[int]) -> None:
    """What one ingest request changed, in one hand-over to the publisher loop.

    Appended alerts come in floods: at most one update per incident per
    THROTTLE_SECONDS for those (the pages re-fetch the incident, so they miss nothing
    lasting beyond that).  The throttle is one Redis round trip for the whole request."""
    due = set(throttle.first_in_window([f"live:{pk}" for pk in appended], THROTTLE_SECONDS))
    # Nobody has the page of an incident that did not exist a moment ago: lists only.
    sends = [([LIST_GROUP], {"type": "incident.changed", "id": pk, "created": True}) for pk in created]
    sends += [
        ([LIST_GROUP, incident_group(pk)], {"type": "incident.changed", "id": pk, "created": False})
        for pk in appended
        if f"live:{pk}" in due
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
