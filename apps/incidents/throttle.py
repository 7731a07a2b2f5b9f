"""At most once per key per interval, across all processes: Redis SET NX EX, for any
number of keys in one round trip (ingest calls it after every request, so it keeps
one client per process rather than Django's cache, which builds a client per call)."""

import redis
from django.conf import settings

_client: redis.Redis | None = None


def first_in_window(keys: list[str], seconds: int) -> list[str]:
    """Those of `keys` not taken in the last `seconds`; they are taken now."""
    global _client
    if not keys:
        return []
    if _client is None:
        _client = redis.Redis.from_url(settings.REDIS_URL)  # its pool reconnects after a fork
    pipe = _client.pipeline(transaction=False)
    for key in keys:
        pipe.set(f"{settings.CACHES['default']['KEY_PREFIX']}:throttle:{key}", 1, nx=True, ex=seconds)
    return [key for key, taken in zip(keys, pipe.execute()) if taken]
