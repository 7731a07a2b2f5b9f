import functools
import logging
import os

from celery import Celery
from celery.signals import worker_process_init
from celery.worker import consumer

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

app = Celery("incident_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


class Consumer(consumer.Consumer):
    """The worker's consumer, reconnecting to a lost broker every half second (at most 2 s
    apart) rather than kombu's 2, 4, 6 … 30 s: after Redis was away for 30 s a worker came
    back up to 10 s after it, and pages waited that long (bench/chaos.py)."""

    def ensure_connected(self, conn):
        conn.ensure_connection = functools.partial(conn.ensure_connection, interval_start=0.5, interval_step=0.5,
                                                   interval_max=2)
        return super().ensure_connected(conn)


def hand_on_only(celery_app: Celery) -> None:
    """For processes that only hand tasks on (web, beat): beat's sweeps find each task's
    work in the database too (redis_outage.py), so wait no longer for the broker than
    for any Redis client, and do not retry a publish.  (Workers keep the longer
    timeouts their blocking reads need.)"""
    from django.conf import settings

    celery_app.conf.broker_transport_options = {
        **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
        "socket_connect_timeout": settings.REDIS_SOCKET_TIMEOUT,
        "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
    }
    celery_app.conf.broker_connection_timeout = settings.REDIS_SOCKET_TIMEOUT
    celery_app.conf.task_publish_retry = False


@worker_process_init.connect
def load_embedding_model(**kwargs):
    """Load the embedding model when a worker process starts (about half a second of
    CPU), not in the first settle task of an alert storm, which would hold its first page."""
    from apps.incidents import embeddings  # needs Django set up, which the worker has done by now

    try:
        embeddings.backend()
    except Exception:  # settle() works without it (no similarity) and logs why
        logging.getLogger(__name__).exception("could not load the embedding model")
