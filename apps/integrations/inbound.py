"""What every ingestion endpoint does between the sender's bytes and ingest()."""

import dataclasses
import hashlib
import hmac
import time

import orjson

from apps.audit.services import Actor
from apps.accounts.sealed import unseal
from apps.incidents.ingest import IngestResult, ingest, ingest_routed
from incident_manager.input_limits import MAX_DEPTH, too_deep

from . import routes
from .models import Integration
from .parsers import PayloadError

SIGNATURE_MAX_AGE = 300  # seconds, for signatures over a timestamp


def decode_json(body: bytes):
    """Parse JSON, refusing what PostgreSQL's jsonb cannot store or we cannot serialise
    again.  orjson (several times the standard library's speed on a storm's payloads)
    already refuses NaN, ±Infinity, numbers that overflow a double and lone surrogates;
    NUL and nesting deeper than MAX_DEPTH are left to us."""
    if b"\\u0000" in body:
        raise PayloadError("body", "must not contain NUL (\\u0000) characters")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise PayloadError("body", f"is not valid JSON ({exc})") from None
    if too_deep(data):
        raise PayloadError("body", f"must not nest arrays and objects more than {MAX_DEPTH} deep")
    return data


def accept(integration: Integration, events) -> list[IngestResult]:
    """Fold the parsed events into incidents on the services the integration's routes
    send them to."""
    actor = Actor(label=f"integration:{integration.name}")
    routed = routes.route_all(integration, events)
    if routed is None:
        return ingest(events, service_id=integration.service_id, integration_id=integration.pk, actor=actor)
    events = [dataclasses.replace(event, route=r.route) for event, r in zip(events, routed)]
    return ingest_routed(events, [r.service_id for r in routed], integration_id=integration.pk, actor=actor)


def signature_problem(integration: Integration, headers, body: bytes) -> str | None:
    """Why the request's body signature is not acceptable, or None when it is (or when
    the integration asks for none)."""
    if not integration.signing_secret:
        return None
    given = headers.get(integration.signature_header, "").removeprefix("sha256=")
    if not given:
        return f"missing {integration.signature_header} header"
    signed = body
    if integration.signature_timestamp_header:
        stamp = headers.get(integration.signature_timestamp_header, "")
        try:
            fresh = abs(time.time() - float(stamp)) <= SIGNATURE_MAX_AGE
        except ValueError:
            fresh = False
        if not fresh:
            return f"missing or stale {integration.signature_timestamp_header} header"
        signed = stamp.encode() + b":" + body
    expected = hmac.new(unseal(integration.signing_secret).encode(), signed, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given.lower()):
        return f"{integration.signature_header} does not match the body"
    return None
