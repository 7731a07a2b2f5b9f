"""iCal (RFC 5545) feeds of on-call shifts, for Google Calendar / Outlook subscriptions."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from icalendar import Calendar, Event

from . import oncall
from .models import Schedule

PAST = timedelta(days=7)
FUTURE = timedelta(days=60)


def _calendar(name: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", "-//LLM Incident Manager//on-call//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    cal.add("refresh-interval;value=duration", "PT1H")
    cal.add("x-published-ttl", "PT1H")
    return cal


def _event(cal, schedule, shift, username, now) -> None:
    event = Event()
    event.add("uid", f"oncall-{schedule.pk}-{shift.user_id}-{int(shift.start.timestamp())}@{settings.SITE_URL.split('://')[-1]}")
    event.add("summary", f"On call: {schedule.name} ({username})")
    event.add("dtstart", shift.start)  # UTC; calendars show it in the viewer's zone
    event.add("dtend", shift.end)
    event.add("dtstamp", now)
    event.add("description", "Override" if shift.override else f"Layer: {shift.layer.name}")
    cal.add_component(event)


def schedule_feed(schedule: Schedule, now: datetime) -> bytes:
    cal = _calendar(f"On call: {schedule.name}")
    result = oncall.shifts(oncall.spec_of(schedule, overrides_after=now - PAST), now - PAST, now + FUTURE)
    users = get_user_model().objects.in_bulk({s.user_id for s in result})
    for shift in result:
        user = users.get(shift.user_id)
        _event(cal, schedule, shift, user.get_username() if user else "?", now)
    return cal.to_ical()


def user_feed(user, now: datetime) -> bytes:
    cal = _calendar(f"My on-call shifts ({user.get_username()})")
    for schedule in Schedule.objects.filter(layers__members__user=user).distinct() | Schedule.objects.filter(
        overrides__user=user
    ).distinct():
        spec = oncall.spec_of(schedule, overrides_after=now - PAST)
        for shift in oncall.shifts(spec, now - PAST, now + FUTURE):
            if shift.user_id == user.pk:
                _event(cal, schedule, shift, user.get_username(), now)
    return cal.to_ical()
