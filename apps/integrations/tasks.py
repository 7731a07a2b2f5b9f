from celery import shared_task

from . import heartbeats


@shared_task
def check_heartbeats() -> int:
    """Beat, every 30 s: open an incident for each heartbeat that went quiet."""
    return heartbeats.check_heartbeats()
