"""Small checks shared by the parsers; each error names the JSON path at fault."""

from datetime import UTC, datetime, timedelta

# A time further than this from now is a sender's wrong clock (or a hostile payload).
PLAUSIBLE = timedelta(days=366)


class PayloadError(ValueError):
    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def obj(value, field: str) -> dict:
    if not isinstance(value, dict):
        raise PayloadError(field, "must be a JSON object")
    return value


def text(data: dict, key: str, field: str, *, required=False, max_length=None, default="") -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise PayloadError(field, "is required")
        return default
    if not isinstance(value, str):
        raise PayloadError(field, "must be a string")
    if required and not value.strip():
        raise PayloadError(field, "must not be empty")
    if max_length is not None and len(value) > max_length:
        raise PayloadError(field, f"must be at most {max_length} characters")
    return value


def string_map(value, field: str, *, max_items=200) -> dict[str, str]:
    """A JSON object of labels; numbers and booleans are accepted and kept as text."""
    if value is None:
        return {}
    obj(value, field)
    if len(value) > max_items:
        raise PayloadError(field, f"must have at most {max_items} entries")
    result = {}
    for key, item in value.items():
        if type(item) is str:  # nearly always: checked first
            pass
        elif isinstance(item, bool):
            item = "true" if item else "false"
        elif isinstance(item, (int, float)):
            item = str(item)
        elif not isinstance(item, str):
            raise PayloadError(f"{field}.{key}", "must be a string")
        result[key] = item
    return result


def choice(value, field: str, allowed: set[str]) -> str:
    if not isinstance(value, str) or value not in allowed:  # (a list or an object is unhashable)
        raise PayloadError(field, f"must be one of {', '.join(sorted(allowed))}")
    return value


def timestamp(value, field: str) -> datetime | None:
    """RFC 3339 as senders write it, nanoseconds included (Python 3.11's parser
    drops digits past the microsecond); Go's zero time is None."""
    if value is None or value == "" or str(value).startswith("0001-01-01"):
        return None
    if not isinstance(value, str):
        raise PayloadError(field, "must be an RFC 3339 timestamp string")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise PayloadError(field, "must be an RFC 3339 timestamp") from None
    if parsed.tzinfo is None:
        raise PayloadError(field, "must include a time zone offset")
    return parsed


def plausible_timestamp(value, field: str, notes: list[str]) -> datetime | None:
    """timestamp(), for a time that is stored: one more than a year from now either way
    becomes unknown (None), and `notes` gets a line for responders saying so.  Refusing
    it would lose the alert (Alertmanager drops a 4xx for good); storing it could make
    its incident unreadable (PostgreSQL keeps years past 9999, which Python cannot read)."""
    moment = timestamp(value, field)
    if moment is not None and abs(moment - datetime.now(UTC)) > PLAUSIBLE:
        notes.append(f"{field} {value} is more than a year from now: recorded as unknown.")
        return None
    return moment
