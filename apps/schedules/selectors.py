"""Reads for the portal, the admin and the iCal feeds."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.accounts import roles

from . import oncall
from .models import Schedule

PREVIEW_DAYS = 14


@dataclass(frozen=True)
class ShiftRow:
    user: object  # User, or None if deleted meanwhile
    start: datetime  # in the schedule's time zone
    end: datetime
    source: str  # "override" or the layer's name


def _users(ids) -> dict:
    return get_user_model().objects.in_bulk(set(ids))


def shift_rows(schedule: Schedule, start: datetime, end: datetime) -> list[ShiftRow]:
    spec = oncall.spec_of(schedule, overrides_after=start)
    tz = spec.tz
    result = oncall.shifts(spec, start, end)
    users = _users(s.user_id for s in result)
    return [
        ShiftRow(
            users.get(s.user_id),
            s.start.astimezone(tz),
            s.end.astimezone(tz),
            "override" if s.override is not None else s.layer.name,
        )
        for s in result
    ]


def upcoming_shifts(schedule: Schedule, *, now: datetime | None = None, days: int = PREVIEW_DAYS) -> list[ShiftRow]:
    now = now or timezone.now()
    return shift_rows(schedule, now, now + timedelta(days=days))


def on_call_now(principal, *, now: datetime | None = None) -> list[dict]:
    """The principal's teams' schedules with who is on call now and next; grouped by team in the template."""
    now = now or timezone.now()
    rows = []
    schedules = list(roles.scoped(Schedule.objects.select_related("team"), principal, team="team").order_by("team__name", "name"))
    specs = {s.pk: oncall.spec_of(s, overrides_after=now) for s in schedules}
    current = {pk: oncall.who_is_on_call(spec, now) for pk, spec in specs.items()}
    upcoming = {pk: oncall.shifts(spec, now, now + timedelta(days=PREVIEW_DAYS))[:2] for pk, spec in specs.items()}
    ids = {c.user_id for c in current.values() if c} | {s.user_id for u in upcoming.values() for s in u}
    users = _users(ids)
    for schedule in schedules:
        who = current[schedule.pk]
        shifts = upcoming[schedule.pk]
        until = shifts[0].end if shifts and who and shifts[0].start <= now else None
        following = next((s for s in shifts if s.start > now), None)
        rows.append(
            {
                "schedule": schedule,
                "user": users.get(who.user_id) if who else None,
                "source": ("override" if who.override else who.layer.name) if who else "",
                "until": until,
                "next_user": users.get(following.user_id) if following else None,
                "next_at": following.start if following else None,
            }
        )
    return rows
