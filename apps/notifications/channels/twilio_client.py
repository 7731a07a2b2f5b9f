"""The twilio SDK's Client, with a base-URL override (TWILIO_API_BASE) for local fakes."""

import logging

from django.conf import settings
from django.urls import reverse
from requests.exceptions import RequestException
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from . import PermanentError, RetryableError, http_error

log = logging.getLogger(__name__)


class _BaseUrlHttpClient(TwilioHttpClient):
    """Sends what the SDK would send to https://<x>.twilio.com to TWILIO_API_BASE instead."""

    def __init__(self, base: str, **kwargs):
        super().__init__(**kwargs)
        self.base = base.rstrip("/")

    def request(self, method, url, *args, **kwargs):
        scheme, _, rest = url.partition("://")
        path = "/" + rest.partition("/")[2]
        return super().request(method, self.base + path, *args, **kwargs)


def status_callback(notification) -> str:
    """Where Twilio posts the message's or call's final status (delivery_reports.py)."""
    return settings.SITE_URL + reverse("twilio-status", kwargs={"notification_id": notification.pk})


def client() -> Client:
    if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM):
        raise PermanentError("Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_FROM)")
    kwargs = {"timeout": settings.NOTIFY_TIMEOUT}
    http = _BaseUrlHttpClient(settings.TWILIO_API_BASE, **kwargs) if settings.TWILIO_API_BASE else TwilioHttpClient(**kwargs)
    return Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=http)


def call(method, **kwargs):
    try:
        return method(**kwargs)
    except TwilioRestException as exc:
        # Twilio's message can quote what was sent (a number, the text); its code says
        # as much to an admin (twilio.com/docs/api/errors) and is all the timeline shows.
        log.debug("twilio answered %s, error %s: %s", exc.status, exc.code, exc.msg)
        raise http_error(exc.status, f"twilio error {exc.code}") from None
    except RequestException as exc:
        raise RetryableError(f"twilio: {type(exc).__name__}: {exc}") from None
