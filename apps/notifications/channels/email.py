"""E-mail through Django's mail (SMTP when EMAIL_URL is set): HTML and text parts,
threaded per incident with Message-ID / In-Reply-To / References."""

import secrets
import smtplib
import socket

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from apps.audit.services import SYSTEM, record

from .. import addresses
from ..models import Notification
from . import NoAddress, PermanentError, RetryableError


def breaker_name(notification) -> str:
    return "email"


def _domain() -> str:
    return settings.DEFAULT_FROM_EMAIL.rpartition("@")[2] or "localhost"


def thread_id(incident) -> str:
    """The incident's thread root: every mail about it refers to this id."""
    return f"<incident-{incident.pk}@{_domain()}>"


def recipients(notification) -> list[str]:
    target = notification.target
    if target.startswith("email:"):
        return [target.removeprefix("email:")]
    if target.startswith("team:"):
        return addresses.team_emails(int(target.removeprefix("team:")))
    address = addresses.contact(notification.recipient, "email")
    return [address] if address else []


def fallback_target(notification) -> str | None:
    """The target of an e-mail standing in for `notification`, None when nobody is reachable."""
    if notification.recipient_id:
        return "" if addresses.contact(notification.recipient, "email") else None
    team_id = notification.incident.service.team_id
    return f"team:{team_id}" if addresses.team_emails(team_id) else None


def incident_url(incident) -> str:
    return settings.SITE_URL + reverse("portal:incident-detail", kwargs={"pk": incident.pk})


def send(notification) -> str:
    if (notification.reason or {}).get("digest"):
        return send_digest(notification)
    incident = notification.incident
    to = recipients(notification)
    if not to:
        raise NoAddress("no e-mail address for this recipient")
    context = {"incident": incident, "notification": notification, "url": incident_url(incident)}
    subject = f"[{incident.severity.upper()}] #{incident.number} {incident.title}"[:250]
    # Short enough never to be folded; unique per notification (and per retry, harmlessly).
    message_id = f"<incident-{incident.pk}.{notification.pk}.{secrets.token_hex(4)}@{_domain()}>"
    root = thread_id(incident)
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("notifications/email/incident.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={"Message-ID": message_id, "In-Reply-To": root, "References": root},
    )
    message.attach_alternative(render_to_string("notifications/email/incident.html", context), "text/html")
    _send(message)
    return message_id


def _send(message) -> None:
    try:
        get_connection(fail_silently=False).send_messages([message])
    except smtplib.SMTPRecipientsRefused as exc:
        codes = {code for code, _ in exc.recipients.values()}
        if all(400 <= code < 500 for code in codes):
            raise RetryableError(f"SMTP recipients refused for now: {exc.recipients}") from None
        raise PermanentError(f"SMTP recipients refused: {exc.recipients}") from None
    except smtplib.SMTPResponseException as exc:
        text = f"SMTP {exc.smtp_code}: {exc.smtp_error!r}"
        if 400 <= exc.smtp_code < 500:
            raise RetryableError(text) from None
        raise PermanentError(text) from None
    except (smtplib.SMTPException, OSError, socket.timeout) as exc:
        raise RetryableError(f"SMTP: {type(exc).__name__}: {exc}") from None


def send_digest(notification) -> str:
    """Low-severity pages written as digest rows (reason["digest"]): one mail per person
    for all of their digest rows that are due, this one included.  The others are
    marked delivered in the same transaction, so a failed send leaves all pending."""
    to = recipients(notification)
    if not to:
        raise NoAddress("no e-mail address for this recipient")
    others = list(
        Notification.objects.select_for_update(skip_locked=True, of=("self",))
        .select_related("incident__service", "recipient")
        .defer("incident__embedding")
        .filter(
            recipient_id=notification.recipient_id,
            channel=Notification.Channel.EMAIL,
            status=Notification.Status.PENDING,
            next_attempt_at__lte=timezone.now(),
            reason__digest=True,
        )
        .exclude(pk=notification.pk)
    )
    rows = [notification, *others]
    incidents = sorted({n.incident_id: n.incident for n in rows}.values(), key=lambda i: i.number)
    context = {"incidents": incidents, "site_url": settings.SITE_URL}
    message_id = f"<digest-{notification.pk}.{secrets.token_hex(4)}@{_domain()}>"
    message = EmailMultiAlternatives(
        subject=f"Digest: {len(incidents)} low-severity incident{'s' if len(incidents) != 1 else ''}",
        body=render_to_string("notifications/email/digest.txt", context),
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=to,
        headers={"Message-ID": message_id},
    )
    message.attach_alternative(render_to_string("notifications/email/digest.html", context), "text/html")
    _send(message)
    now = timezone.now()
    for other in others:
        other.status, other.delivered_at, other.external_id = Notification.Status.DELIVERED, now, message_id
        other.attempts += 1
        other.next_attempt_at, other.last_error = None, ""
        other.save(update_fields=["status", "delivered_at", "external_id", "attempts", "next_attempt_at", "last_error"])
        record(
            "notification.delivered",
            actor=SYSTEM,
            incident=other.incident,
            data={
                "notification": other.pk,
                "channel": "email",
                "to": other.recipient.get_username() if other.recipient_id else "",
                "digest_of": notification.pk,
                "external_id": message_id,
            },
        )
    return message_id
