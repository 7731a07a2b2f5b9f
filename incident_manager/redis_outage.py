"""What a process does while Redis does not answer: stop asking, for a while.

Redis carries work the web process hands on but need not finish itself: tasks
for the workers, live updates, throttle windows, the versions of the settings
each process keeps.  Everything that work is derived from is in PostgreSQL, and
beat's sweeps pick up what was never queued (settle_overdue, deliver_due), so an
alert is stored and answered whether or not Redis answers.  Every Redis client
has a short socket timeout (settings.REDIS_SOCKET_TIMEOUT); after one failure the
process skips Redis for DOWN_SECONDS instead of making each sender wait out the
timeout again (a blackholed Redis answers nothing, not even a refusal).
"""

import functools
import logging
import time

import redis
from kombu.exceptions import OperationalError as BrokerError

log = logging.getLogger(__name__)

DOWN_SECONDS = 15.0
ERRORS = (redis.RedisError, BrokerError, OSError, TimeoutError)

_down_until = 0.0


def available() -> bool:
    return time.monotonic() >= _down_until


def failed(what: str, exc: BaseException) -> None:
    global _down_until
    if available():
        log.warning("redis unavailable (%s: %s: %s); skipping it for %.0f s", what, type(exc).__name__, exc, DOWN_SECONDS)
    _down_until = time.monotonic() + DOWN_SECONDS


def attempt(what: str, work, *args, **kwargs):
    """work(*args, **kwargs), unless Redis is known to be down or fails now (None then)."""
    if not available():
        return None
    try:
        return work(*args, **kwargs)
    except ERRORS as exc:
        failed(what, exc)
        return None


def or_else(value):
    """Decorator: the function's answer, or `value` while Redis is down (as attempt)."""

    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, **kwargs):
            answer = attempt(function.__qualname__, function, *args, **kwargs)
            return value if answer is None else answer

        return wrapper

    return decorate


def reset() -> None:
    """Tests: Redis is back."""
    global _down_until
    _down_until = 0.0
