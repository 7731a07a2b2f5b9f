"""Voice calls through Twilio: the call reads the incident and takes "press 1 to
acknowledge" (TwiML <Gather>); Twilio posts the digit to twilio_gather
(outbound_views.py), which checks Twilio's request signature, and the call's end to
twilio_status."""

from django.conf import settings
from django.urls import reverse
from twilio.twiml.voice_response import VoiceResponse

from .. import addresses
from . import NoAddress
from .twilio_client import call, client, status_callback


def breaker_name(notification) -> str:
    return f"voice:{settings.TWILIO_ACCOUNT_SID}"


def fallback_target(notification) -> str | None:
    return "" if addresses.contact(notification.recipient, "voice") else None


def gather_url(notification) -> str:
    return settings.SITE_URL + reverse("twilio-gather", kwargs={"notification_id": notification.pk})


def twiml(notification) -> str:
    incident = notification.incident
    response = VoiceResponse()
    gather = response.gather(num_digits=1, action=gather_url(notification), method="POST", timeout=10)
    gather.say(
        f"Incident {incident.number}, severity {incident.severity}, on {incident.service.name}: {incident.title}. "
        "Press 1 to acknowledge."
    )
    response.say("No input received. Goodbye.")
    return str(response)


def send(notification) -> str:
    to = addresses.contact(notification.recipient, "voice") or addresses.contact(notification.recipient, "sms")
    if not to:
        raise NoAddress("no phone number for a call")
    placed = call(
        client().calls.create,
        to=to,
        from_=settings.TWILIO_FROM,
        twiml=twiml(notification),
        status_callback=status_callback(notification),  # Twilio posts the call's end (completed, busy, no-answer…)
    )
    return placed.sid
