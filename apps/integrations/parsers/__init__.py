"""One pure parser per sender format: parsed JSON in, list[AlertEvent] out.

PARSERS serves the generic ingestion URL (/api/v1/ingest/<token>/<kind>); the
PagerDuty and Opsgenie parsers sit behind endpoints that mimic those APIs.

A parser raises PayloadError naming the first bad field; it never touches the
database, so a bad payload can never leave anything half-written.
"""

from . import alertmanager, generic, grafana
from .validation import PayloadError

PARSERS = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "generic": generic.parse,
}



def parse(integration, data):
    """The events in `data`, read as `integration`'s format (and its templates, if any)."""
    if integration.kind == "generic":
        return generic.parse(data, templates=integration.templates or None)
    return PARSERS[integration.kind](data)


__all__ = ["PARSERS", "PayloadError", "parse"]
