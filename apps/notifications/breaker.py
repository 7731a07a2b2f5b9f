"""A circuit breaker per channel and account, its state in Redis (Django's cache),
so that every worker process sees the same circuit.

Closed: requests go through; NOTIFY_BREAKER_THRESHOLD consecutive failures open it.
Open: nothing is sent for NOTIFY_BREAKER_OPEN_SECONDS (callers fall back).
Half-open: then exactly one caller gets a trial request; success closes the
circuit, failure opens it again.  Times are wall-clock timestamps stored in the
values (not key expiry), so tests can move the clock.

Without Redis (redis_outage.py) every circuit counts as closed: a page that might
fail is better than one never tried, and delivery has its retries and fallbacks.
"""

import time

from django.conf import settings
from django.core.cache import cache

from incident_manager import redis_outage

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half-open"
TRIAL_SECONDS = 30  # a trial that never reports back frees the slot after this long
_KEEP = 24 * 3600


def _keys(name: str) -> tuple[str, str, str]:
    return f"breaker:{name}:failures", f"breaker:{name}:open-until", f"breaker:{name}:trial"


@redis_outage.or_else(CLOSED)
def state(name: str) -> str:
    failures_key, open_key, _ = _keys(name)
    values = cache.get_many([failures_key, open_key])  # one round trip
    until = values.get(open_key)
    if until and time.time() < until:
        return OPEN
    if (values.get(failures_key) or 0) >= settings.NOTIFY_BREAKER_THRESHOLD:
        return HALF_OPEN
    return CLOSED


@redis_outage.or_else(None)
def open_until(name: str) -> float | None:
    return cache.get(_keys(name)[1])


@redis_outage.or_else(True)
def allow(name: str) -> bool:
    """May a request go out on this circuit now?  In half-open state only the one
    caller that wins the trial slot gets True."""
    current = state(name)
    if current == CLOSED:
        return True
    if current == OPEN:
        return False
    _, _, trial_key = _keys(name)
    trial = cache.get(trial_key)
    if trial and time.time() < trial:
        return False
    # cache.add is atomic in Redis (SET NX): one winner.  A stale trial slot is replaced.
    if trial:
        cache.delete(trial_key)
    return cache.add(trial_key, time.time() + TRIAL_SECONDS, timeout=_KEEP)


@redis_outage.or_else(None)
def success(name: str) -> None:
    cache.delete_many(list(_keys(name)))


@redis_outage.or_else(None)
def failure(name: str) -> None:
    failures_key, open_key, trial_key = _keys(name)
    cache.add(failures_key, 0, timeout=_KEEP)
    failures = cache.incr(failures_key)
    if failures >= settings.NOTIFY_BREAKER_THRESHOLD:
        cache.set(open_key, time.time() + settings.NOTIFY_BREAKER_OPEN_SECONDS, timeout=_KEEP)
        cache.delete(trial_key)


def reset(name: str) -> None:
    success(name)
