"""Calendar feed secrets: made here, shown once, stored only as a digest (as API keys)."""

from django.db import transaction

from apps.accounts.tokens import digest, new_token
from apps.audit.services import Actor, record
from incident_manager import ratelimit

from .models import CalendarFeed, Schedule


def new_schedule_feed(schedule: Schedule, *, actor: Actor) -> str:
    """A new secret for the schedule's feed; the old URL stops working."""
    token, token_hash = new_token("ics")
    with transaction.atomic():
        Schedule.objects.filter(pk=schedule.pk).update(feed_token_hash=token_hash)
        record("schedule.feed_created", actor=actor, data={"schedule": schedule.pk, "name": schedule.name})
    return token


def new_user_feed(user) -> str:
    """A new secret for the user's own feed; the old URL stops working."""
    token, token_hash = new_token("ics")
    CalendarFeed.objects.update_or_create(user=user, defaults={"token_hash": token_hash})
    return token


def schedule_of_feed(token: str, request) -> Schedule | None:
    return _guarded(request, lambda: Schedule.objects.filter(feed_token_hash=digest(token)).first())


def user_of_feed(token: str, request):
    feed = _guarded(request, lambda: CalendarFeed.objects.select_related("user")
                    .filter(token_hash=digest(token), user__is_active=True).first())
    return feed.user if feed else None


def _guarded(request, lookup):
    """A feed secret is a credential like a sender's token: a source presenting unknown
    ones is refused (incident_manager/ratelimit.py) before the query."""
    ratelimit.refuse_guesses(request)
    if (found := lookup()) is None:
        ratelimit.guessed(request)
    return found
