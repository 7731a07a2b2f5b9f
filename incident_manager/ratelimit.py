"""Rate limits: token buckets in Redis, shared by every process.

What is limited (README "Rate limits"; each limit a setting, "N/PERIOD": a bucket of
N tokens, refilled at N per PERIOD, so N requests at once and N per PERIOD after):

- RATELIMIT_INTEGRATION, per integration token, on the senders' endpoints;
- RATELIMIT_API_KEY, per API key (or per portal user) on the REST API;
- RATELIMIT_UNKNOWN_TOKEN, per source IP, for tokens and keys that match nothing:
  checked before the lookup, so a guesser who spent it costs no query;
- RATELIMIT_LOGIN_IP and RATELIMIT_LOGIN_USERNAME, POSTs to the sign-in pages.

How it answers: the API 429 with Retry-After (DRF's Throttled, in the API's error
shape); a sender 503 with Retry-After, in the shape of a database outage
(unavailable.py), because Alertmanager drops any 4xx for good and would lose the
alerts; the sign-in pages a 429 page with Retry-After.

A limit must never cost an alert for want of Redis: when Redis does not answer, or
redis_outage says it is away, every request is let through (fail open).

The bucket is one Lua script, so that taking a token is atomic across processes
and the clock is Redis's, not each web host's.  Two things in each process spare
Redis most calls: a bucket found empty is refused locally until the time Redis gave
for its next token (a flood of refused requests asks Redis nothing), and a large
bucket is taken from in leases of a hundredth of its size, at most 100 (a round trip
took 0.3-0.5 ms on this project's machine, against 0.9 ms of CPU for a single-alert
request; a storm asks Redis once per lease, ~11 µs a request at 10000/s).  Leases
make a limit at most lease × processes tokens loose; limits under 200 lease one token
at a time, exactly.
"""

import functools
import hashlib
import ipaddress
import math
import re
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.urls import reverse
from rest_framework.exceptions import Throttled
from rest_framework.throttling import BaseThrottle

from incident_manager import redis_outage

LIMITS = ("RATELIMIT_INTEGRATION", "RATELIMIT_API_KEY", "RATELIMIT_UNKNOWN_TOKEN",
          "RATELIMIT_LOGIN_IP", "RATELIMIT_LOGIN_USERNAME")
LEASE_SECONDS = 1.0  # a lease's tokens unused by then are dropped (they count as spent)
_FORGET_AT = 10_000  # buckets remembered per process before the lapsed ones are dropped

_SPEC = re.compile(r"\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# KEYS[1]: the bucket, a hash of the tokens left (v) at a time in ms (t).
# ARGV: capacity, refill in tokens per ms, tokens wanted (0: only look, take none).
# Answers {tokens granted (1..wanted; 1 when only looking), 0} or, when not even one
# token is left, {0, ms until one is}.  Redis's own TIME: every process, one clock.
_BUCKET_LUA = """
local capacity = tonumber(ARGV[1])
local per_ms = tonumber(ARGV[2])
local wanted = tonumber(ARGV[3])
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local state = redis.call('HMGET', KEYS[1], 'v', 't')
local tokens = capacity
if state[1] then
  tokens = math.min(capacity, tonumber(state[1]) + math.max(0, now - tonumber(state[2])) * per_ms)
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) / per_ms)}
end
if wanted == 0 then
  return {1, 0}
end
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'v', tostring(tokens), 't', tostring(now))
-- Gone once full again: a full bucket and no bucket are the same.
redis.call('PEXPIRE', KEYS[1], math.ceil((capacity - tokens) / per_ms) + 1000)
return {granted, 0}
"""

_client: redis.Redis | None = None
_bucket_script = None
_empty_until: dict[str, float] = {}  # bucket -> time.monotonic() when Redis said a token is back
_leases: dict[str, tuple[int, float]] = {}  # bucket -> (tokens left of this process's lease, until)


@dataclass(frozen=True)
class Limit:
    setting: str  # its setting's name, which the answers name
    spec: str
    capacity: int
    per_ms: float
    lease: int  # tokens taken from Redis at a time

    @property
    def described(self) -> str:
        return f"{self.setting} ({self.spec})"


@functools.lru_cache(maxsize=64)
def parse(setting: str, spec: str) -> Limit | None:
    """`spec` like "100/m", "10/10m", "10000/s"; "off" (or empty) for no limit."""
    if spec.strip().lower() in ("", "off", "none"):
        return None
    match = _SPEC.fullmatch(spec)
    if not match or int(match[1]) < 1 or int(match[2] or 1) < 1:
        raise ImproperlyConfigured(f'{setting} is "N/PERIOD" (e.g. "100/m", "10/10m") or "off", not {spec!r}')
    capacity = int(match[1])
    seconds = int(match[2] or 1) * _UNIT_SECONDS[match[3]]
    return Limit(setting, spec.strip(), capacity, capacity / (seconds * 1000), max(1, min(capacity // 100, 100)))


def configured(setting: str) -> Limit | None:
    """The limit a setting holds now (tests change them), None when off."""
    if not settings.RATELIMIT_ENABLED:
        return None
    return parse(setting, getattr(settings, setting))


class RateLimited(Throttled):
    """A request over a limit.  DRF's Throttled, so that the API answers it (429,
    Retry-After, the API's error body) like any of its errors; elsewhere
    RateLimitMiddleware answers it."""

    def __init__(self, limit: Limit, wait_seconds: float, per: str):
        self.limit = limit
        self.retry_after = max(1, math.ceil(wait_seconds))
        self.why = f"rate limit {limit.described} exceeded for this {per}"
        super().__init__(wait=self.retry_after, detail=f"Too many requests: {self.why}.")


# --- Buckets --------------------------------------------------------------------------


def _ask(bucket: str, limit: Limit, wanted: int) -> tuple[int, float] | None:
    """(tokens granted, seconds until one is back) from Redis; None while it is away."""
    global _client, _bucket_script
    if not redis_outage.available():
        return None
    if _client is None:
        # One client per process (its pool reconnects after a fork), with the short
        # timeouts every Redis client here has: a silent Redis holds a request 0.5 s once.
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
            socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        )
        _bucket_script = _client.register_script(_BUCKET_LUA)
    key = f"{settings.CACHES['default']['KEY_PREFIX']}:ratelimit:{bucket}"
    try:
        granted, wait_ms = _bucket_script(keys=[key], args=[limit.capacity, repr(limit.per_ms), wanted])
    except redis_outage.ERRORS as exc:
        redis_outage.failed("ratelimit", exc)
        return None
    return int(granted), int(wait_ms) / 1000


def _refused(bucket: str, now: float) -> float | None:
    """Seconds this bucket is still known to be empty, or None."""
    until = _empty_until.get(bucket)
    if until is None:
        return None
    if until > now:
        return until - now
    del _empty_until[bucket]
    return None


def _remember_empty(bucket: str, now: float, wait: float) -> None:
    if len(_empty_until) > _FORGET_AT:
        for lapsed in [b for b, until in _empty_until.items() if until <= now]:
            del _empty_until[lapsed]
    _empty_until[bucket] = now + wait


def take(setting: str, key: str, per: str) -> None:
    """Spend one token of `key`'s bucket under the limit `setting`, or raise RateLimited."""
    limit = configured(setting)
    if limit is None:
        return
    bucket = f"{setting}:{key}"
    now = time.monotonic()
    if (wait := _refused(bucket, now)) is not None:
        raise RateLimited(limit, wait, per)
    left, until = _leases.get(bucket, (0, 0.0))
    if left > 0 and until > now:
        _leases[bucket] = (left - 1, until)
        return
    answer = _ask(bucket, limit, limit.lease)
    if answer is None:
        return  # Redis away: let it through
    granted, wait = answer
    if granted == 0:
        _remember_empty(bucket, now, wait)
        raise RateLimited(limit, wait, per)
    if len(_leases) > _FORGET_AT:
        _leases.clear()
    _leases[bucket] = (granted - 1, now + LEASE_SECONDS)


def check(setting: str, key: str, per: str) -> None:
    """Raise RateLimited if `key`'s bucket is empty, taking nothing."""
    limit = configured(setting)
    if limit is None:
        return
    bucket = f"{setting}:{key}"
    now = time.monotonic()
    if (wait := _refused(bucket, now)) is not None:
        raise RateLimited(limit, wait, per)
    answer = _ask(bucket, limit, 0)
    if answer is not None and answer[0] == 0:
        _remember_empty(bucket, now, answer[1])
        raise RateLimited(limit, answer[1], per)


def forget() -> None:
    """Drop what this process remembers of buckets (tests, as they flush Redis)."""
    _empty_until.clear()
    _leases.clear()


# --- Who is asking ----------------------------------------------------------------------


def client_ip(request) -> str:
    """The source address: REMOTE_ADDR, or with RATELIMIT_TRUSTED_PROXIES = N proxies
    in front, the address the outermost of them saw, the Nth from the right in
    X-Forwarded-For (each proxy appends its peer; what is left of that, the client
    wrote).  IPv6 addresses count by /64, what one host is usually given."""
    address = request.META.get("REMOTE_ADDR", "")
    if (proxies := settings.RATELIMIT_TRUSTED_PROXIES) > 0:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if forwarded:
            address = forwarded[max(len(forwarded) - proxies, 0)]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64] or "unknown"
    if ip.version == 6:
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False).network_address) + "/64"
    return str(ip)


def refuse_guesses(request) -> None:
    """Before looking a token up: refuse (RateLimited) if its source has presented
    too many unknown tokens lately."""
    check("RATELIMIT_UNKNOWN_TOKEN", client_ip(request), "source address presenting unknown tokens")


def guessed(request) -> None:
    """A token matched nothing: spend a token of its source's bucket."""
    try:
        take("RATELIMIT_UNKNOWN_TOKEN", client_ip(request), "source address presenting unknown tokens")
    except RateLimited:
        pass  # this one is answered already (it was checked before its lookup)


def integration_request(integration_pk: int) -> None:
    take("RATELIMIT_INTEGRATION", str(integration_pk), "integration token")


# --- Wiring -------------------------------------------------------------------------------


class ApiThrottle(BaseThrottle):
    """DRF's hook (DEFAULT_THROTTLE_CLASSES), run once the caller is authenticated and
    permitted: one bucket per API key, or per portal user for session calls."""

    def allow_request(self, request, view):
        if getattr(request.auth, "pk", None) is not None:
            take("RATELIMIT_API_KEY", f"key:{request.auth.pk}", "API key")
        elif getattr(request.user, "is_authenticated", False) and request.user.pk is not None:
            take("RATELIMIT_API_KEY", f"user:{request.user.pk}", "user")
        return True


@functools.cache
def _login_fields() -> dict[str, str]:
    """Sign-in path -> the form field holding the username."""
    return {reverse("account_login"): "login", reverse("admin:login"): "username"}


def _username_key(username: str) -> str:
    return hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]


class RateLimitMiddleware:
    """In both middleware stacks: limits the sign-in pages' POSTs itself, and answers
    RateLimited raised by the senders' views (503) or elsewhere (429)."""

    def __init__(self, get_response):
        for setting in LIMITS:
            configured(setting)  # a malformed limit stops the process at start
        from apps.integrations.urls import SENDER_PATH_PREFIXES  # (a module that imports this one)

        self.sender_paths = SENDER_PATH_PREFIXES
        self.get_response = get_response

    def __call__(self, request):
        if request.method == "POST" and (field := _login_fields().get(request.path)):
            try:
                take("RATELIMIT_LOGIN_IP", client_ip(request), "source address")
                if username := request.POST.get(field, ""):
                    take("RATELIMIT_LOGIN_USERNAME", _username_key(username), "username")
            except RateLimited as exc:
                return self._page(exc)
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, RateLimited):
            return None
        if request.path.startswith(self.sender_paths):
            from incident_manager.unavailable import unavailable

            return unavailable(exception.why, exception.retry_after)
        if request.path.startswith("/api/"):
            from django.http import JsonResponse

            return JsonResponse({"error": exception.detail}, status=429, headers={"Retry-After": str(exception.retry_after)})
        return self._page(exception)

    @staticmethod
    def _page(exc: RateLimited) -> HttpResponse:
        html = render_to_string("429.html", {"retry_after": exc.retry_after})
        return HttpResponse(html, status=429, headers={"Retry-After": str(exc.retry_after)})
