"""Schedules: who_is_on_call and shifts, across DST and time zones (pure, plus a few
model round trips)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.contrib.auth import get_user_model
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.schedules import oncall
from apps.schedules.models import Layer, LayerMember, Override, Schedule
from apps.schedules.oncall import LayerSpec, OverrideSpec, ScheduleSpec, shifts, who_is_on_call

from .factories import TeamFactory


def person(username):
    """A user without a password (hashing one costs ~0.5 s here)."""
    return get_user_model().objects.create(username=username, email=f"{username}@example.org")

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
ZONES = [BERLIN, NEW_YORK, "UTC", "Asia/Kolkata", "Australia/Lord_Howe", "Pacific/Auckland", "America/Sao_Paulo"]


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def weekly(participants=(1, 2, 3), *, tz=BERLIN, handoff=time(9), start=date(2024, 1, 1), **kw):
    layer = LayerSpec(tuple(participants), kw.pop("length", 1), kw.pop("unit", "weeks"), handoff, start, **kw)
    return ScheduleSpec(tz, (layer,))


# --- hypothesis: the properties the issue asks for -----------------------------------

rotations = st.builds(
    LayerSpec,
    participants=st.lists(st.integers(1, 50), min_size=1, max_size=6).map(tuple),
    shift_length=st.integers(1, 14),
    shift_unit=st.sampled_from(["hours", "days", "weeks"]),
    handoff_time=st.times().map(lambda t: t.replace(second=0, microsecond=0)),
    start_date=st.dates(date(2015, 1, 1), date(2030, 1, 1)),
)
zones = st.sampled_from(ZONES)
offsets = st.timedeltas(timedelta(0), timedelta(days=3 * 365))


@settings(max_examples=300, deadline=None)
@given(layer=rotations, tz=zones, offset=offsets)
def test_exactly_one_participant_of_a_rotation_is_on_at_any_instant_of_its_span(layer, tz, offset):
    zone = ZoneInfo(tz)
    begin = oncall.rotation_boundary(layer, 0, zone)
    at = begin + offset
    covering = [s for s in oncall.rotation_shifts(layer, at, at + timedelta(seconds=1), zone) if s.start <= at < s.end]
    assert len(covering) == 1
    assert covering[0].user_id in layer.participants
    assert who_is_on_call(ScheduleSpec(tz, (layer,)), at).user_id == covering[0].user_id
    # Before the span nobody is on.
    assert who_is_on_call(ScheduleSpec(tz, (layer,)), begin - timedelta(microseconds=1)) is None


@settings(max_examples=200, deadline=None)
@given(layer=rotations, tz=zones, offset=offsets, hours=st.integers(1, 24 * 60))
def test_consecutive_shifts_meet_with_no_gap_and_no_overlap(layer, tz, offset, hours):
    zone = ZoneInfo(tz)
    start = oncall.rotation_boundary(layer, 0, zone) + offset
    end = start + timedelta(hours=hours)
    result = oncall.rotation_shifts(layer, start, end, zone)
    assert result[0].start <= start and result[-1].end >= end
    for a, b in zip(result, result[1:]):
        assert a.end == b.start
    for s in result:
        assert s.end > s.start
        if layer.shift_unit == "hours":
            assert s.end - s.start == timedelta(hours=layer.shift_length)
        else:  # local calendar days: the wall-clock handoff never moves (outside DST gaps)
            days = layer.shift_length * (7 if layer.shift_unit == "weeks" else 1)
            assert abs((s.end - s.start) - timedelta(days=days)) <= timedelta(hours=3)
    # The final schedule of a one-layer schedule tiles the range the same way.
    final = shifts(ScheduleSpec(tz, (layer,)), start, end)
    assert final[0].start == start and final[-1].end == end
    for a, b in zip(final, final[1:]):
        assert a.end == b.start


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    layer=rotations,
    tz=zones,
    offset=offsets,
    o_start=st.timedeltas(timedelta(0), timedelta(days=20)),
    o_length=st.timedeltas(timedelta(minutes=1), timedelta(days=5)),
    probe=st.timedeltas(timedelta(0), timedelta(days=30)),
)
def test_an_override_wins_exactly_within_its_window(layer, tz, offset, o_start, o_length, probe):
    zone = ZoneInfo(tz)
    base = oncall.rotation_boundary(layer, 0, zone) + offset
    override = OverrideSpec(999, base + o_start, base + o_start + o_length, id=1)
    with_override = ScheduleSpec(tz, (layer,), (override,))
    without = ScheduleSpec(tz, (layer,))
    at = base + probe
    who = who_is_on_call(with_override, at)
    if override.start <= at < override.end:
        assert who.user_id == 999 and who.override == override
    else:
        assert who == who_is_on_call(without, at)
    # Its edges exactly.
    assert who_is_on_call(with_override, override.start).user_id == 999
    assert who_is_on_call(with_override, override.end - timedelta(microseconds=1)).user_id == 999
    after = who_is_on_call(with_override, override.end)
    assert after == who_is_on_call(without, override.end)


@settings(max_examples=100, deadline=None)
@given(
    tz=zones,
    start=st.datetimes(datetime(2020, 1, 1), datetime(2028, 1, 1), timezones=st.just(UTC)),
    hours=st.integers(1, 24 * 21),
)
def test_final_schedule_agrees_with_who_is_on_call_everywhere(tz, start, hours):
    """Three layers (a weekly base, a restricted business-hours layer, a wrapped night
    window) and an override: shifts() and who_is_on_call() must tell the same story."""
    spec = ScheduleSpec(
        tz,
        (
            LayerSpec((1, 2, 3), 1, "weeks", time(9), date(2019, 12, 30), level=0, id=1),
            LayerSpec((4, 5), 1, "days", time(8), date(2019, 12, 30), level=1, id=2,
                      restrict_start=time(9), restrict_end=time(17), restrict_weekdays=frozenset({0, 1, 2, 3, 4})),
            LayerSpec((6,), 12, "hours", time(0), date(2019, 12, 30), level=2, id=3,
                      restrict_start=time(23), restrict_end=time(1, 30)),
        ),
        (OverrideSpec(7, start + timedelta(hours=5), start + timedelta(hours=9), id=1),),
    )
    end = start + timedelta(hours=hours)
    final = shifts(spec, start, end)
    assert final[0].start == start and final[-1].end == end  # the base layer covers everything
    for a, b in zip(final, final[1:]):
        assert a.end == b.start and (a.user_id, a.layer, a.override) != (b.user_id, b.layer, b.override)
    for s in final:
        for at in (s.start, s.start + (s.end - s.start) / 2, s.end - timedelta(microseconds=1)):
            assert who_is_on_call(spec, at).user_id == s.user_id


# --- DST: Europe/Berlin and America/New_York, spring and autumn ----------------------


@pytest.mark.parametrize(
    ("tz", "day", "expected_hours"),
    [
        (BERLIN, date(2025, 3, 30), 23),  # spring forward
        (BERLIN, date(2025, 10, 26), 25),  # fall back
        (NEW_YORK, date(2025, 3, 9), 23),
        (NEW_YORK, date(2025, 11, 2), 25),
    ],
)
def test_daily_shift_spanning_dst_keeps_wall_clock_handoff(tz, day, expected_hours):
    spec = weekly((1, 2), tz=tz, handoff=time(9), start=date(2025, 1, 1), unit="days")
    zone = ZoneInfo(tz)
    start = datetime.combine(day - timedelta(days=1), time(6), tzinfo=zone)
    result = shifts(spec, start, start + timedelta(days=3))
    dst_shift = next(s for s in result if s.start == datetime.combine(day - timedelta(days=1), time(9), tzinfo=zone))
    assert dst_shift.end - dst_shift.start == timedelta(hours=expected_hours)
    for s in result[1:]:
        assert s.start.astimezone(zone).time() == time(9)


@pytest.mark.parametrize(
    ("tz", "before", "after"),
    [
        (BERLIN, utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 30)),  # 01:30 CET | 03:30 CEST
        (BERLIN, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30)),  # 02:30 CEST | 02:30 CET
        (NEW_YORK, utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 7, 30)),
        (NEW_YORK, utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 6, 30)),
    ],
)
def test_hourly_rotation_counts_absolute_hours_through_dst(tz, before, after):
    spec = weekly((1, 2), tz=tz, handoff=time(0), start=date(2025, 1, 1), unit="hours")
    # One-hour shifts alternate every real hour, whatever the wall clock does.
    assert who_is_on_call(spec, before).user_id != who_is_on_call(spec, after).user_id
    result = shifts(spec, before, after + timedelta(hours=1))
    assert all(s.end - s.start <= timedelta(hours=1) for s in result)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_handoff_in_the_spring_gap_happens_an_hour_later_on_the_wall_clock(tz):
    gap_day = {BERLIN: date(2025, 3, 30), NEW_YORK: date(2025, 3, 9)}[tz]
    spec = weekly((1, 2), tz=tz, handoff=time(2, 30), start=gap_day - timedelta(days=7), unit="days")
    zone = ZoneInfo(tz)
    boundary = oncall.rotation_boundary(spec.layers[0], 7, zone)
    assert boundary.astimezone(zone).time() == time(3, 30)
    assert oncall.rotation_boundary(spec.layers[0], 8, zone).astimezone(zone).time() == time(2, 30)


@pytest.mark.parametrize("tz", [BERLIN, NEW_YORK])
def test_business_hours_restriction_follows_local_time_across_dst(tz):
    zone = ZoneInfo(tz)
    spec = ScheduleSpec(
        tz,
        (
            LayerSpec((1,), 1, "weeks", time(0), date(2025, 1, 6), level=0),
            LayerSpec((2,), 1, "weeks", time(0), date(2025, 1, 6), level=1,
                      restrict_start=time(9), restrict_end=time(17), restrict_weekdays=frozenset(range(5))),
        ),
    )
    for day in (date(2025, 3, 28), date(2025, 3, 31), date(2025, 10, 24), date(2025, 10, 27), date(2025, 11, 3)):
        assert who_is_on_call(spec, datetime.combine(day, time(8, 59), tzinfo=zone)).user_id == 1
        assert who_is_on_call(spec, datetime.combine(day, time(9), tzinfo=zone)).user_id == 2
        assert who_is_on_call(spec, datetime.combine(day, time(16, 59), tzinfo=zone)).user_id == 2
        assert who_is_on_call(spec, datetime.combine(day, time(17), tzinfo=zone)).user_id == 1
    saturday = datetime(2025, 3, 29, 12, tzinfo=zone)
    assert who_is_on_call(spec, saturday).user_id == 1


def test_follow_the_sun():
    """APAC 00-08, EMEA 08-16, AMER 16-24 UTC, each its own restricted layer."""
    layers = tuple(
        LayerSpec((uid,), 1, "weeks", time(0), date(2025, 1, 6), level=1, id=uid,
                  restrict_start=time(a), restrict_end=time(b) if b < 24 else time(0))
        for uid, a, b in [(10, 0, 8), (20, 8, 16), (30, 16, 24)]
    )
    spec = ScheduleSpec("UTC", layers)
    assert who_is_on_call(spec, utc(2025, 6, 2, 7, 59)).user_id == 10
    assert who_is_on_call(spec, utc(2025, 6, 2, 8)).user_id == 20
    assert who_is_on_call(spec, utc(2025, 6, 2, 16)).user_id == 30
    assert who_is_on_call(spec, utc(2025, 6, 2, 23, 59)).user_id == 30
    day = shifts(spec, utc(2025, 6, 2), utc(2025, 6, 3))
    assert [(s.user_id, s.start.hour, s.end.hour) for s in day] == [(10, 0, 8), (20, 8, 16), (30, 16, 0)]


def test_window_wrapping_midnight_belongs_to_the_weekday_it_starts_on():
    night = LayerSpec((2,), 1, "weeks", time(0), date(2025, 1, 6), level=1,
                      restrict_start=time(22), restrict_end=time(6), restrict_weekdays=frozenset({4}))  # Friday night
    spec = ScheduleSpec("UTC", (LayerSpec((1,), 1, "weeks", time(0), date(2025, 1, 6)), night))
    assert who_is_on_call(spec, utc(2025, 6, 6, 23)).user_id == 2  # Friday 23:00
    assert who_is_on_call(spec, utc(2025, 6, 7, 5, 59)).user_id == 2  # Saturday 05:59
    assert who_is_on_call(spec, utc(2025, 6, 7, 6)).user_id == 1
    assert who_is_on_call(spec, utc(2025, 6, 5, 23)).user_id == 1  # Thursday night


def test_naive_datetimes_are_refused():
    with pytest.raises(ValueError, match="time-zone-aware"):
        who_is_on_call(weekly(), datetime(2025, 1, 1))


# --- models -------------------------------------------------------------------------


@pytest.mark.django_db
def test_model_schedule_round_trip():
    alice, bob, carol = (person(n) for n in ("alice", "bob", "carol"))
    schedule = Schedule.objects.create(name="Primary", team=TeamFactory(), time_zone=BERLIN)
    layer = Layer.objects.create(
        schedule=schedule, name="weekly", shift_length=1, shift_unit="weeks",
        handoff_time=time(9), start_date=date(2025, 1, 6),
    )
    LayerMember.objects.create(layer=layer, user=bob, position=1)
    LayerMember.objects.create(layer=layer, user=alice, position=0)
    Override.objects.create(schedule=schedule, user=carol, start=utc(2025, 1, 8), end=utc(2025, 1, 9))
    assert who_is_on_call(schedule, utc(2025, 1, 7)).user_id == alice.pk
    assert who_is_on_call(schedule, utc(2025, 1, 8, 12)).user_id == carol.pk
    assert who_is_on_call(schedule, utc(2025, 1, 14, 12)).user_id == bob.pk
    assert who_is_on_call(schedule, utc(2025, 1, 1)) is None  # before the rotation starts
    assert [s.user_id for s in shifts(schedule, utc(2025, 1, 6, 8), utc(2025, 1, 15))] == [
        alice.pk, carol.pk, alice.pk, bob.pk,
    ]
