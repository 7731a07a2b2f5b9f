"""What every ingestion endpoint does between the sender's bytes and ingest()."""

import json
import math

from apps.audit.services import Actor
from apps.incidents.ingest import IngestResult, ingest

from .models import Integration
from .parsers import PayloadError


def _finite(number: str) -> float:
    value = float(number)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {number}")
    return value


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


def decode_json(body: bytes):
    """Parse JSON, refusing what PostgreSQL's jsonb cannot store (NaN, ±Infinity, NUL)."""
    if b"\\u0000" in body:
        raise PayloadError("body", "must not contain NUL (\\u0000) characters")
    try:
        return json.loads(body, parse_constant=_reject_constant, parse_float=_finite)
    except (ValueError, RecursionError) as exc:
        raise PayloadError("body", f"is not valid JSON ({exc})") from None


def accept(integration: Integration, events) -> list[IngestResult]:
    """Fold the parsed events into incidents on the integration's service."""
    return ingest(
        events,
        service_id=integration.service_id,
        integration_id=integration.pk,
        actor=Actor(label=f"integration:{integration.name}"),
    )
