"""SMS through Twilio: one text of at most 160 characters with the incident number."""

from django.conf import settings

from .. import addresses
from . import NoAddress
from .twilio_client import call, client, status_callback

LIMIT = 160


def breaker_name(notification) -> str:
    return f"sms:{settings.TWILIO_ACCOUNT_SID}"


def fallback_target(notification) -> str | None:
    return "" if addresses.contact(notification.recipient, "sms") else None


def body(incident) -> str:
    head = f"#{incident.number} {incident.severity.upper()} {incident.service.name}: "
    tail = " Reply in Slack or the portal."
    text = head + incident.title + tail
    if len(text) <= LIMIT:
        return text
    room = LIMIT - len(head) - 1
    return (head + incident.title[:room].rstrip() + "…")[:LIMIT]


def send(notification) -> str:
    to = notification.target.removeprefix("sms:") if notification.target.startswith("sms:") else None
    to = to or addresses.contact(notification.recipient, "sms")
    if not to:
        raise NoAddress("no phone number for SMS")
    message = call(
        client().messages.create,
        to=to,
        from_=settings.TWILIO_FROM,
        body=body(notification.incident),
        status_callback=status_callback(notification),
    )
    return message.sid
