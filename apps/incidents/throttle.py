"""At most once per key per interval, across all processes.

The window is held in Redis (SET NX EX), and each process remembers until when a
key it has asked about is taken, so that in a storm (every ingest request asks
about every incident it appended to) Redis is asked about each key at most once
per window per process, and about any number of keys in one round trip.  One
client per process: Django's cache builds a client per call.
"""

import time

import redis
from django.conf import settings

from incident_manager import redis_outage

_client: redis.Redis | None = None
_taken_until: dict[str, float] = {}  # key -> time.monotonic() when its window ends
_FORGET_AT = 10_000  # keys remembered before the lapsed ones are dropped


def first_in_window(keys: list[str], seconds: int) -> list[str]:
    """Those of `keys` not taken in the last `seconds`; they are taken now."""
    global _client
    now = time.monotonic()
    ask = [key for key in keys if _taken_until.get(key, 0) <= now]
    if not ask or not redis_outage.available():
        return []  # with Redis away nothing is first: the throttled work waits for it
    if _client is None:
        # Its pool reconnects after a fork.
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=settings.REDIS_SOCKET_TIMEOUT, socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT
        )
    prefix = f"{settings.CACHES['default']['KEY_PREFIX']}:throttle:"
    pipe = _client.pipeline(transaction=False)
    for key in ask:
        pipe.set(prefix + key, 1, nx=True, ex=seconds)
        pipe.pttl(prefix + key)
    try:
        answers = pipe.execute()
    except redis_outage.ERRORS as exc:
        redis_outage.failed("throttle", exc)
        return []
    if len(_taken_until) > _FORGET_AT:
        for key in [k for k, until in _taken_until.items() if until <= now]:
            del _taken_until[key]
    taken = []
    for key, won, ttl_ms in zip(ask, answers[::2], answers[1::2]):
        _taken_until[key] = now + max(ttl_ms, 0) / 1000
        if won:
            taken.append(key)
    return taken


def forget() -> None:
    """Drop what this process remembers (tests call it as they reset Redis)."""
    _taken_until.clear()
