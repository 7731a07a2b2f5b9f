"""Escalation follows the incident lifecycle (apps/incidents/lifecycle.py): its timers
change in the transaction that changed the incident, on the row the sender locked."""

from django.dispatch import receiver

from apps.incidents import lifecycle

from . import services


@receiver(lifecycle.opened)
def start_timers(sender, *, paging, at, **kwargs):
    services.start_many(paging, now=at)


@receiver(lifecycle.acknowledged)
@receiver(lifecycle.resolved)
@receiver(lifecycle.merged)
@receiver(lifecycle.inhibited)
def stop_timer(sender, *, incident, **kwargs):
    services.stop(incident)


@receiver(lifecycle.unacknowledged)
@receiver(lifecycle.released)
def restart_timer(sender, *, incident, **kwargs):
    services.restart(incident)


@receiver(lifecycle.severity_changed)
def replan_timer(sender, *, incident, paging, **kwargs):
    if paging:
        services.replan(incident)


@receiver(lifecycle.escalation_requested)
def escalate_now(sender, *, incident, **kwargs):
    return services.escalate_now(incident)


@receiver(lifecycle.snoozed)
def snooze(sender, *, incident, until, **kwargs):
    return services.snooze(incident, until=until)
