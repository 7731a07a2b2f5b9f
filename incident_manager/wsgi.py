"""The WSGI application (gunicorn): the portal and API through Django's whole
middleware stack, alert senders' endpoints through SENDER_MIDDLEWARE alone.

Ten middlewares cost a single-alert request about a tenth of its CPU time, for
sessions, users, CSRF and messages that a sender's request never uses
(docs/adr/0008).  Django has no per-view middleware, so the split is made here,
by path, before Django sees the request; both handlers share the URLconf.
"""

import os

from django.conf import settings
from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "incident_manager.settings")

portal = get_wsgi_application()  # (sets Django up)

from apps.integrations.urls import SENDER_PATH_PREFIXES  # noqa: E402
from incident_manager.celery import app as celery_app  # noqa: E402
from incident_manager.celery import hand_on_only  # noqa: E402

hand_on_only(celery_app)


class SenderHandler(WSGIHandler):
    def load_middleware(self, is_async=False):
        # Django builds the chain from settings.MIDDLEWARE; it is read here, once.
        full, settings.MIDDLEWARE = settings.MIDDLEWARE, settings.SENDER_MIDDLEWARE
        try:
            super().load_middleware(is_async)
        finally:
            settings.MIDDLEWARE = full


senders = SenderHandler()


def application(environ, start_response):
    handler = senders if environ.get("PATH_INFO", "").startswith(SENDER_PATH_PREFIXES) else portal
    return handler(environ, start_response)
