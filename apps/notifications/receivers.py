"""What goes out follows the incident lifecycle (apps/incidents/lifecycle.py): the rows
that announce an incident are written in its transaction; Slack updates are queued on
commit."""

from django.db import transaction
from django.dispatch import receiver

from apps.incidents import lifecycle

from . import outbox


@receiver(lifecycle.opened)
def announce_opened(sender, *, paging, **kwargs):
    for incident in paging:
        if not incident.settling:  # nothing to settle: announced now; else once settled
            outbox.announce(incident.pk, incident.service_id)


@receiver(lifecycle.settled)
def announce_settled(sender, *, incident_id, service_id, **kwargs):
    outbox.announce(incident_id, service_id)


@receiver(lifecycle.released)
def announce_released(sender, *, incident, **kwargs):
    outbox.announce(incident.pk, incident.service_id)


@receiver(lifecycle.changed)
def update_messages(sender, *, incident_id, **kwargs):
    # robust: the change is committed; a broker away must not turn it into an error.
    transaction.on_commit(lambda: outbox.incident_changed(incident_id), robust=True)


@receiver(lifecycle.alerts_appended)
def follow_up(sender, *, incident_ids, **kwargs):
    outbox.alerts_appended(incident_ids)  # throttled Slack thread replies
