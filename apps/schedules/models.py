"""On-call schedules: data only.  The computation is in oncall.py."""

import datetime
import zoneinfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q

# An id a config-as-code tool or an importer gave the object, unique per type (issue 17).
EXTERNAL_ID = {"max_length": 200, "null": True, "blank": True, "unique": True}
# Rotations are computed from their start date: far outside this range the arithmetic
# of shifts leaves what datetime can hold.
EARLIEST_START, LATEST_START = datetime.date(1970, 1, 1), datetime.date(2199, 12, 31)


def validate_time_zone(value: str) -> None:
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationError(f"{value!r} is not a known time zone (e.g. Europe/Berlin).") from None


class Weekday(models.IntegerChoices):
    MONDAY = 0
    TUESDAY = 1
    WEDNESDAY = 2
    THURSDAY = 3
    FRIDAY = 4
    SATURDAY = 5
    SUNDAY = 6


class Schedule(models.Model):
    name = models.CharField(max_length=100)
    external_id = models.CharField(**EXTERNAL_ID)
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="schedules")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    # The digest of the secret in the iCal feed's URL (whoever has the URL can read the
    # calendar); the URL is shown once, when a team admin makes it (services.py).
    feed_token_hash = models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self):
        return self.name


class Layer(models.Model):
    """One rotation.  Where several layers cover a moment, the highest `level` wins."""

    class Unit(models.TextChoices):
        HOURS = "hours"
        DAYS = "days"
        WEEKS = "weeks"

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="layers")
    name = models.CharField(max_length=100)
    external_id = models.CharField(**EXTERNAL_ID)
    level = models.PositiveSmallIntegerField(default=0, help_text="Higher layers win where they cover the moment.")
    shift_length = models.PositiveSmallIntegerField(default=1)
    shift_unit = models.CharField(max_length=8, choices=Unit.choices, default=Unit.WEEKS)
    handoff_time = models.TimeField(help_text="Local wall-clock time (schedule's time zone) of the handoff.")
    start_date = models.DateField(help_text="The first shift starts at the handoff time of this day.")
    # Optional restriction: the layer covers only this local time-of-day window (it may
    # wrap midnight: 22:00-06:00) on these weekdays (of the window's start).  Empty
    # start/end: all day; empty weekdays: every day.
    restrict_start = models.TimeField(null=True, blank=True)
    restrict_end = models.TimeField(null=True, blank=True)
    restrict_weekdays = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices), blank=True, default=list
    )
    participants = models.ManyToManyField(settings.AUTH_USER_MODEL, through="LayerMember", related_name="+")

    class Meta:
        ordering = ["schedule", "-level", "id"]
        constraints = [
            models.CheckConstraint(condition=Q(shift_length__gte=1), name="layer_shift_length_positive"),
            models.CheckConstraint(
                condition=Q(restrict_start__isnull=True, restrict_end__isnull=True)
                | Q(restrict_start__isnull=False, restrict_end__isnull=False),
                name="layer_restriction_both_ends",
            ),
        ]

    def __str__(self):
        return f"{self.schedule}: {self.name}"

    def clean(self):
        # What the constraints say, named by field (admin forms and the API show it there).
        errors = {}
        if (self.restrict_start is None) != (self.restrict_end is None):
            missing = "restrict_end" if self.restrict_end is None else "restrict_start"
            errors[missing] = "Give both ends of the time-of-day restriction, or neither."
        if self.shift_length is not None and self.shift_length < 1:
            errors["shift_length"] = "A shift lasts at least 1 unit."
        if self.start_date is not None and not EARLIEST_START <= self.start_date <= LATEST_START:
            errors["start_date"] = f"Pick a day between {EARLIEST_START} and {LATEST_START}."
        if errors:
            raise ValidationError(errors)


class LayerMember(models.Model):
    layer = models.ForeignKey(Layer, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["layer", "position", "id"]

    def __str__(self):
        return f"{self.position}. {self.user}"


class Override(models.Model):
    """`user` is on call from `start` to `end`, whatever the layers say."""

    schedule = models.ForeignKey(Schedule, on_delete=models.CASCADE, related_name="overrides")
    external_id = models.CharField(**EXTERNAL_ID)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    start = models.DateTimeField()
    end = models.DateTimeField()
    note = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["schedule", "start"]
        constraints = [models.CheckConstraint(condition=Q(end__gt=F("start")), name="override_end_after_start")]
        indexes = [models.Index(fields=["schedule", "end"])]

    def clean(self):
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValidationError({"end": "The override must end after it starts."})

    def __str__(self):
        return f"{self.user} on {self.schedule} {self.start:%Y-%m-%d %H:%M}–{self.end:%Y-%m-%d %H:%M}"


class CalendarFeed(models.Model):
    """The digest of a user's personal iCal feed secret (one per user; the URL is shown
    once, when they make it)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="calendar_feed")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
