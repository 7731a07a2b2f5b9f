"""AlertEvent: the one shape every sender's alert is parsed into.

The integrations app's parsers turn a sender's payload into AlertEvents; ingest()
only ever sees these, never a sender's format.
"""

import hashlib
from dataclasses import dataclass, field
from datetime import datetime

from .models import Severity

# Sender words for severity, mapped onto ours.  Unknown words are a payload error
# in formats that name a severity explicitly, and "medium" where it is only a label.
SEVERITY_ALIASES = {
    "critical": Severity.CRITICAL, "crit": Severity.CRITICAL, "page": Severity.CRITICAL,
    "fatal": Severity.CRITICAL, "emergency": Severity.CRITICAL, "p1": Severity.CRITICAL,
    "high": Severity.HIGH, "error": Severity.HIGH, "err": Severity.HIGH, "major": Severity.HIGH,
    "p2": Severity.HIGH,
    "medium": Severity.MEDIUM, "warning": Severity.MEDIUM, "warn": Severity.MEDIUM, "p3": Severity.MEDIUM,
    "low": Severity.LOW, "minor": Severity.LOW, "p4": Severity.LOW,
    "info": Severity.INFO, "informational": Severity.INFO, "none": Severity.INFO, "p5": Severity.INFO,
}


def normalise_severity(word: str | None) -> Severity | None:
    if word is None:
        return None
    return SEVERITY_ALIASES.get(str(word).strip().lower())


def severity_of_labels(labels: dict[str, str]) -> tuple[Severity | None, str]:
    """The severity a sender put in its labels (`severity`, else `priority`), and
    where it was found; (None, "") when it put none there that we know."""
    for name in ("severity", "priority"):
        if severity := normalise_severity(labels.get(name)):
            return severity, f"{name} label '{labels[name]}'"
    return None, ""


def label_fingerprint(labels: dict[str, str]) -> str:
    """A stable hash of a label set: the same labels in any order give the same value."""
    return hashlib.sha256(
        b"".join(b"%s\xff%s\xff" % (name.encode(), str(labels[name]).encode()) for name in sorted(labels))
    ).hexdigest()


@dataclass(frozen=True)
class AlertEvent:
    title: str
    status: str  # "firing" or "resolved"
    severity: Severity
    dedup_key: str
    fingerprint: str
    source: str
    payload: dict
    description: str = ""
    labels: dict[str, str] = field(default_factory=dict)
    group_key: str = ""
    starts_at: datetime | None = None
    # Where the sender gave `severity` (e.g. "severity label 'critical'"); empty when
    # it gave none, and the classifier's severity becomes the incident's.
    severity_from: str = "the sender"
    # Which of the integration's routes took it (apps/integrations/routes.py).
    route: str = ""
