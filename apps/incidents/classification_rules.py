"""Admins' classification rules (ClassificationRule), compiled once per process.

classify() runs on ingest's hot path, so the rules are not read from the database
per alert: each process keeps them compiled, with the version they were read at.
A save or delete of a rule bumps the version in the shared cache (Redis), which
every process checks at most once a second; the process that made the change
reloads at once.  If the cache is unreachable, the rules already loaded stay in
force: a Redis hiccup must not fail an ingest.
"""

import logging
import re
import time
import uuid
from dataclasses import dataclass

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from .models import ClassificationRule

log = logging.getLogger(__name__)

VERSION_KEY = "classification-rules-version"
CHECK_EVERY_SECONDS = 1.0


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


class _Loaded:
    version: str | None = None
    checked_at: float = 0.0
    rules: list[CompiledRule] | None = None


_loaded = _Loaded()


def first_match(texts: tuple[str, ...], labels: dict[str, str], source: str = "") -> ClassificationRule | None:
    """The first enabled rule (by order) matching any of `texts`, the labels and the source."""
    return next((c.rule for c in _rules() if c.matches(texts, labels, source)), None)


def _rules() -> list[CompiledRule]:
    now = time.monotonic()
    if _loaded.rules is not None and now - _loaded.checked_at < CHECK_EVERY_SECONDS:
        return _loaded.rules
    try:
        version = cache.get(VERSION_KEY)
        if version is None:
            version = uuid.uuid4().hex
            cache.add(VERSION_KEY, version, timeout=None)
            version = cache.get(VERSION_KEY, version)
    except Exception:
        log.warning("classification rules: cache unreachable, keeping the loaded rules", exc_info=True)
        if _loaded.rules is not None:
            return _loaded.rules
        version = None
    _loaded.checked_at = now
    if _loaded.rules is None or version != _loaded.version:
        compiled = [
            CompiledRule(rule, _compile(rule))
            for rule in ClassificationRule.objects.filter(enabled=True).order_by("order", "pk")
        ]
        # Saved rules passed clean(); a pattern broken by hand in the database is skipped.
        _loaded.rules = [c for c in compiled if c.pattern or not c.rule.pattern]
        _loaded.version = version
    return _loaded.rules


def _compile(rule: ClassificationRule) -> re.Pattern | None:
    if not rule.pattern:
        return None
    try:
        return re.compile(rule.pattern, re.IGNORECASE)
    except re.error:
        log.warning("classification rule %s has a bad pattern; skipped", rule.pk)
        return None


@receiver(post_save, sender=ClassificationRule)
@receiver(post_delete, sender=ClassificationRule)
def _changed(**kwargs):
    forget()  # this process: at once
    # The others: within CHECK_EVERY_SECONDS of the commit (bumped earlier, one could
    # reload before the commit and keep the old rules under the new version).
    transaction.on_commit(_bump_version, robust=True)


def forget() -> None:
    """Reload the rules on next use (tests call it as their transactions roll back)."""
    _loaded.rules = None


def _bump_version():
    cache.set(VERSION_KEY, uuid.uuid4().hex, timeout=None)
