from celery import shared_task

from . import heartbeats, outbox

FAN_OUT = 20  # rows per task when the beat finds many due at once


@shared_task
def deliver_notifications(ids: list[int]) -> dict:
    """Attempt these rows now.  Safe to run twice: deliver() skips rows that are
    delivered, not yet due, or locked by another worker."""
    outcomes = {}
    for pk in ids:
        outcome = outbox.deliver(pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@shared_task
def deliver_due() -> int:
    """Beat, every second: rows whose next attempt is due (retries, fallbacks, rows
    whose task was lost), spread over the workers."""
    ids = outbox.claim_for_enqueue(outbox.due_ids())
    for start in range(0, len(ids), FAN_OUT):
        deliver_notifications.delay(ids[start : start + FAN_OUT])
    return len(ids)


@shared_task
def update_slack_messages(incident_id: int) -> int:
    """Bring the incident's Slack messages up to date (chat.update).  Idempotent: it
    renders the incident as it is now."""
    from .channels import slack

    return slack.update_messages(incident_id)


@shared_task
def post_slack_followup(incident_id: int) -> int:
    from .channels import slack

    return slack.post_followups(incident_id)


@shared_task
def check_heartbeats() -> int:
    """Beat, every 30 s: open an incident for each heartbeat that went quiet."""
    return heartbeats.check_heartbeats()
