"""One module per outbound channel, each with `send(notification) -> external_id`
and `breaker_name(notification)`.  A send raises RetryableError for what may work
later (timeouts, 5xx, 429) and PermanentError for what never will (other 4xx)."""

from importlib import import_module


class DeliveryError(Exception):
    pass


class RetryableError(DeliveryError):
    def __init__(self, message: str, *, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(DeliveryError):
    pass


class NoAddress(PermanentError):
    """The recipient has no contact of this kind (so a fallback to it is pointless)."""


def get(channel: str):
    return import_module(f"{__name__}.{channel}")


def parse_retry_after(value) -> float | None:
    """Retry-After in seconds (the HTTP-date form is rare for APIs; ignored)."""
    try:
        return max(0.0, float(value)) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def http_error(status: int, message: str, retry_after=None) -> DeliveryError:
    if status == 429 or status >= 500:
        return RetryableError(f"HTTP {status}: {message}"[:1000], retry_after=parse_retry_after(retry_after))
    return PermanentError(f"HTTP {status}: {message}"[:1000])
