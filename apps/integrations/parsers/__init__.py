"""One pure parser per sender format: parsed JSON in, list[AlertEvent] out.

PARSERS serves the generic ingestion URL (/api/v1/ingest/<token>/<kind>); the
PagerDuty and Opsgenie parsers sit behind endpoints that mimic those APIs.

A parser raises PayloadError naming the first bad field; it never touches the
database, so a bad payload can never leave anything half-written.
Each keeps the sender's JSON as the event's payload, less the sender's credentials
(credentials.py).
"""

from . import alertmanager, generic, grafana, opsgenie, pagerduty
from .validation import PayloadError

PARSERS = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "generic": generic.parse,
}


def parse(integration, data):
    """The events in `data`, read as `integration`'s format (and its templates, if
    any); for PagerDuty and Opsgenie, as their endpoints read an event and a new alert."""
    if integration.kind == "generic":
        return generic.parse(data, templates=integration.templates or None)
    if integration.kind == "pagerduty":
        return pagerduty.parse(data)
    if integration.kind == "opsgenie":
        return opsgenie.parse_create(data)
    return PARSERS[integration.kind](data)


__all__ = ["PARSERS", "PayloadError", "parse"]
