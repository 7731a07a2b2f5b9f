import logging
import os

from celery import Celery
from celery.signals import worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

app = Celery("incident_manager")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_process_init.connect
def load_embedding_model(**kwargs):
    """Load the embedding model when a worker process starts (about half a second of
    CPU), not in the first settle task of an alert storm, which would hold its first page."""
    from apps.incidents import embeddings  # needs Django set up, which the worker has done by now

    try:
        embeddings.backend()
    except Exception:  # settle() works without it (no similarity) and logs why
        logging.getLogger(__name__).exception("could not load the embedding model")
