"""Settings that ingest reads on every request, kept in each process's memory.

Ingest must not read the same admin-edited rows from the database for every alert
(integrations by token, grouping rules, maintenance windows, classification
rules): each process keeps a copy, with the version it was read at.  A save or
delete of a watched model bumps the version in the shared cache (Redis) once its
transaction commits; every process checks the version at most once a second, and
the process that made the change drops its copy at once.  If the cache is
unreachable, the copy already loaded stays in force: a Redis hiccup must not fail
an ingest.

Writes that bypass model signals (QuerySet.update, bulk_create, raw SQL) must call
`changed()` themselves.
"""

import logging
import time
import uuid
from collections.abc import Callable

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import m2m_changed, post_delete, post_save

from incident_manager import redis_outage

log = logging.getLogger(__name__)

CHECK_EVERY_SECONDS = 1.0

_all: list["VersionedCopy"] = []


class VersionedCopy:
    def __init__(self, name: str, load: Callable[[], object]):
        self.version_key = f"versioned-copy:{name}"
        self._load = load
        self._value = None
        self._version = None
        self._checked_at = 0.0
        _all.append(self)

    def get(self):
        now = time.monotonic()
        if self._value is not None and now - self._checked_at < CHECK_EVERY_SECONDS:
            return self._value
        if not redis_outage.available():
            # No version to compare with: keep the copy, or read the rows once.
            if self._value is None:
                self._value, self._version = self._load(), None
            return self._value
        try:
            version = cache.get(self.version_key)
            if version is None:
                cache.add(self.version_key, uuid.uuid4().hex, timeout=None)
                version = cache.get(self.version_key)
        except Exception as exc:
            redis_outage.failed(f"{self.version_key} check", exc)
            if self._value is not None:
                return self._value
            version = None
        self._checked_at = now
        if self._value is None or version != self._version:
            self._value = self._load()
            self._version = version
        return self._value

    def forget(self) -> None:
        """Reload on next use, in this process."""
        self._value = None

    def changed(self, **signal_kwargs) -> None:
        self.forget()  # this process: at once
        # The others: within CHECK_EVERY_SECONDS of the commit (bumped earlier, one could
        # reload before the commit and keep the old rows under the new version).
        transaction.on_commit(self._bump, robust=True)

    def _bump(self) -> None:
        cache.set(self.version_key, uuid.uuid4().hex, timeout=None)

    def watch(self, *models) -> None:
        """Call changed() on every save or delete of these models (and on changes of
        the many-to-many tables among them)."""
        for model in models:
            post_save.connect(self.changed, sender=model, weak=False)
            post_delete.connect(self.changed, sender=model, weak=False)
            m2m_changed.connect(self.changed, sender=model, weak=False)


def forget_all() -> None:
    """Tests call this as their transactions roll back."""
    for copy in _all:
        copy.forget()
