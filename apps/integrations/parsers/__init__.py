"""One pure parser per sender format: parsed JSON in, list[AlertEvent] out.

A parser raises PayloadError naming the first bad field; it never touches the
database, so a bad payload can never leave anything half-written.
"""

from . import alertmanager, generic
from .validation import PayloadError

PARSERS = {
    "alertmanager": alertmanager.parse,
    "generic": generic.parse,
}

__all__ = ["PARSERS", "PayloadError"]
