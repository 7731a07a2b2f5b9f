"""Celery beat's scheduler: django-celery-beat's, which goes on without the broker.

The escalation timers, the outbox and the settling incidents are rows in
PostgreSQL, and beat's sweeps over them are safe to run twice at once (advisory
locks, row locks, idempotency keys).  So while Redis does not answer, beat runs
those sweeps itself (settings.BEAT_RUN_WITHOUT_BROKER) instead of handing them to
a worker it cannot reach: levels fire and pages go out on time through an outage,
not when Redis is back.  The sweeps see the outage too (redis_outage.available())
and do their work in this process rather than queue it.  Other entries are skipped
until the broker is back: their next run does the same work.

Like the web process, beat only hands tasks on, so it waits no longer for the
broker than any Redis client (celery.hand_on_only), and after a failure leaves it
alone for redis_outage.DOWN_SECONDS.
"""

import logging

from celery.beat import SchedulingError
from django.conf import settings
from django_celery_beat.schedulers import DatabaseScheduler

from incident_manager import redis_outage
from incident_manager.celery import hand_on_only

log = logging.getLogger(__name__)


class Scheduler(DatabaseScheduler):
    def __init__(self, *args, **kwargs):
        hand_on_only(kwargs.get("app") or args[0])
        self._producer = None
        super().__init__(*args, **kwargs)

    @property
    def producer(self):
        # Celery's beat connects once, retrying for ever, and keeps that connection; this
        # one connects when the broker is thought to be up, and again after a failure.
        if self._producer is None and redis_outage.available():
            try:
                connection = self.app.connection_for_write()
                connection.ensure_connection(max_retries=0)  # one try: the sweeps run here meanwhile
                self._producer = self.Producer(connection, auto_declare=False)
            except redis_outage.ERRORS as exc:
                redis_outage.failed("beat's broker connection", exc)
        return self._producer

    def apply_async(self, entry, producer=None, advance=True, **kwargs):
        if producer is not None and redis_outage.available():
            try:
                return super().apply_async(entry, producer, advance, **kwargs)
            except SchedulingError as exc:
                if not isinstance(exc.__cause__ or exc.__context__, redis_outage.ERRORS):
                    raise
                redis_outage.failed(f"beat sending {entry.task}", exc)
                self._drop_producer()
        elif advance:
            entry = self.reserve(entry)
        # (super() reserved the entry before it failed to send it.)
        if entry.task not in settings.BEAT_RUN_WITHOUT_BROKER:
            raise SchedulingError(f"broker unavailable: {entry.name} skipped until it is back")
        log.info("broker unavailable: running %s in beat", entry.task)
        result = self.app.tasks[entry.task].apply(entry.args or (), entry.kwargs or {})
        if result.failed():
            log.error("%s failed in beat: %s", entry.task, result.traceback)
        return result

    def _drop_producer(self):
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.connection.close()
            except redis_outage.ERRORS:
                pass  # it is dead already
