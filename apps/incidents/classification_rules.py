"""Admins' classification rules (ClassificationRule), compiled once per process.

classify() runs on ingest's hot path, so the rules are not read from the database
per alert: each process keeps them compiled (incident_manager/versioned_copy.py).
"""

import logging
import re
from dataclasses import dataclass

from incident_manager.versioned_copy import VersionedCopy

from .models import ClassificationRule

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CompiledRule:
    rule: ClassificationRule
    pattern: re.Pattern | None

    def matches(self, texts: tuple[str, ...], labels: dict[str, str], source: str) -> bool:
        r = self.rule
        if self.pattern and not any(self.pattern.search(text) for text in texts):
            return False
        if r.label_name and labels.get(r.label_name) != r.label_value:
            return False
        return not r.source or r.source == source


def first_match(texts: tuple[str, ...], labels: dict[str, str], source: str = "") -> ClassificationRule | None:
    """The first enabled rule (by order) matching any of `texts`, the labels and the source."""
    return next((c.rule for c in rules.get() if c.matches(texts, labels, source)), None)


def _load() -> list[CompiledRule]:
    compiled = [
        CompiledRule(rule, _compile(rule)) for rule in ClassificationRule.objects.filter(enabled=True).order_by("order", "pk")
    ]
    # Saved rules passed clean(); a pattern broken by hand in the database is skipped.
    return [c for c in compiled if c.pattern or not c.rule.pattern]


rules = VersionedCopy("classification-rules", _load)
rules.watch(ClassificationRule)


def _compile(rule: ClassificationRule) -> re.Pattern | None:
    if not rule.pattern:
        return None
    try:
        return re.compile(rule.pattern, re.IGNORECASE)
    except re.error:
        log.warning("classification rule %s has a bad pattern; skipped", rule.pk)
        return None
