from celery import shared_task

from . import engine


@shared_task(ignore_result=True)
def tick(batch: int = 500) -> int:
    """Fire every due escalation level.  Beat sends this every 2 seconds; running it
    twice at once, or again after a crash, is safe (engine.py)."""
    return engine.tick(batch=batch)
