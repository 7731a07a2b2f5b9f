"""The delivery tasks, registered for Celery's autodiscovery.  Each is defined beside
the code it runs, which also queues it (a retry, a fallback, a message to update):
so nothing imports this module back."""

from .channels.slack import post_slack_followup, update_slack_messages
from .outbox import deliver_due, deliver_notifications

__all__ = ["deliver_due", "deliver_notifications", "post_slack_followup", "update_slack_messages"]
