"""What happens to incidents, announced to the apps that care.

incidents knows no escalation policy and no channel: it sends these signals, and
escalation (the timers) and integrations (the messages that go out) connect their
receivers in their AppConfig.ready().  Every signal but `alerts_appended` is sent
inside the transaction that made the change, with the incident's row locked or just
written: a receiver writes its rows in that same transaction, so they commit or roll
back with the change, and queues anything slow with transaction.on_commit.

Each signal is sent with sender=Incident and these keyword arguments:
"""

from django.dispatch import Signal

from .models import Incident

# incidents: the new incidents; paging: those that page (not silenced by a maintenance
# window), of which the ones still `settling` are checked by a worker before their
# first message; at: when they opened.
opened = Signal()
# incident_id, service_id: an incident that was settling has been checked and pages
# as itself.
settled = Signal()
# incident: acknowledged by someone; or `resolved`; or `merged` into another (resolved
# as merged); or `inhibited`: held back by an open incident of a service it depends on.
acknowledged = Signal()
resolved = Signal()
merged = Signal()
inhibited = Signal()
# incident: triggered again after an acknowledgement (un-acknowledged, ack timeout, a
# snooze that ran out); or `released`: the incident that held it back resolved.
unacknowledged = Signal()
released = Signal()
# incident: its severity changed; paging: whether it pages at all (False under a
# maintenance window), so the receivers know whether to re-plan.
severity_changed = Signal()
# incident: someone asked to page further now.  A receiver answers with a true value
# when it will; with no such answer the verb fails (nothing left to escalate).
escalation_requested = Signal()
# incident, until: acknowledged until `until`, then triggered again.  A receiver
# answers with a true value when it will wake the incident up then.
snoozed = Signal()
# incident_id: anything about the incident changed (status, severity, assignee, parent,
# alerts moved in or out); what shows it should be brought up to date after commit.
changed = Signal()
# incident_ids: open incidents that more alerts joined.  Sent once the alerts are
# committed (the repeats' fast path stores them outside any transaction of Django's).
alerts_appended = Signal()


def answered(signal: Signal, **kwargs) -> bool:
    """Send `signal` from Incident; whether any receiver answered with a true value."""
    return any(response for _, response in signal.send(sender=Incident, **kwargs))
