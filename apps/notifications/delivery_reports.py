"""What providers report about a message after we handed it over: Twilio posts an
SMS's or a call's final status to our StatusCallback URL (outbound_views.twilio_status).

The row stays "delivered" (handed over, our side of the work is done); the
provider's verdict goes to external_status, a failure's reason to last_error,
and an audit entry to the incident's timeline."""

from django.db import transaction

from apps.audit.services import Actor, record

from .models import Notification

TWILIO = Actor("twilio")
# Final statuses: for SMS (MessageStatus) and for calls (CallStatus).  Others (queued,
# sent, ringing, in-progress…) are steps on the way and are not recorded.
FINAL_OK = {"delivered", "read", "completed"}
FINAL_FAILED = {"undelivered", "failed", "no-answer", "busy", "canceled"}


class UnknownMessage(Exception):
    pass


def record_twilio_status(notification_id: int, sid: str, status: str, error_code: str = "") -> bool:
    """Record a final status reported for this row's message; True if it changed the row.
    A report for another message (a SID that is not the row's) is refused."""
    if status not in FINAL_OK | FINAL_FAILED:
        return False
    with transaction.atomic():
        n = Notification.objects.select_for_update().select_related("incident").filter(pk=notification_id).first()
        if n is None or not sid or n.external_id != sid:
            raise UnknownMessage(f"no message {sid!r} for notification {notification_id}")
        if n.external_status == status:
            return False  # Twilio retries callbacks: the same report twice changes nothing
        n.external_status = status
        if status in FINAL_FAILED:
            n.last_error = f"twilio: {status}" + (f" (error {error_code})" if error_code else "")
        n.save(update_fields=["external_status", "last_error"])
        data = {"notification": n.pk, "channel": n.channel, "external_id": sid, "status": status}
        if error_code:
            data["error_code"] = error_code
        record("notification.reported", actor=TWILIO, incident=n.incident, data=data)
    return True
