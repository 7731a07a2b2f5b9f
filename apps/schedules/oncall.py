"""Who is on call: pure computation on time-zone-aware datetimes.

Rules:
- A layer's shift k starts at the handoff time.  Shifts counted in days or weeks
  are counted in local calendar days (a shift spanning a DST change lasts 23 or
  25 hours, and the handoff stays at the same wall-clock time); shifts counted in
  hours are absolute hours.  A handoff time that falls in a DST gap is read with
  the offset before the change (zoneinfo's fold=0), so 02:30 on a spring-forward
  night in Berlin is 03:30 CEST.
- A restriction is a local time-of-day window on some weekdays; a window whose end
  is not after its start wraps midnight and belongs to the weekday it starts on.
- At an instant: an override covering it wins (the latest-created one if several),
  else the highest layer that covers it (later layer on a tie), else nobody.

Everything works on ScheduleSpec (plain data); `spec_of(schedule)` loads it from
the models with three queries.  Intervals are half-open: [start, end).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

HOURS, DAYS, WEEKS = "hours", "days", "weeks"


@dataclass(frozen=True)
class LayerSpec:
    participants: tuple[int, ...]  # user ids, in rotation order
    shift_length: int
    shift_unit: str
    handoff_time: time
    start_date: date
    level: int = 0
    restrict_start: time | None = None
    restrict_end: time | None = None
    restrict_weekdays: frozenset[int] = frozenset()
    id: int | None = None
    name: str = ""


@dataclass(frozen=True)
class OverrideSpec:
    user_id: int
    start: datetime
    end: datetime
    id: int | None = None


@dataclass(frozen=True)
class ScheduleSpec:
    time_zone: str
    layers: tuple[LayerSpec, ...] = ()
    overrides: tuple[OverrideSpec, ...] = ()
    id: int | None = None
    name: str = ""

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)


@dataclass(frozen=True)
class OnCall:
    """Who is on call at a moment, and why."""

    user_id: int
    layer: LayerSpec | None = None
    override: OverrideSpec | None = None

    def why(self) -> dict:
        if self.override is not None:
            return {"source": "override", "override": self.override.id}
        return {"source": "layer", "layer": self.layer.id, "layer_name": self.layer.name}


@dataclass(frozen=True)
class Shift:
    user_id: int
    start: datetime
    end: datetime
    layer: LayerSpec | None = None
    override: OverrideSpec | None = None
    extra: dict = field(default_factory=dict, compare=False)


def _require_aware(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("who_is_on_call and shifts need time-zone-aware datetimes")
    return at.astimezone(UTC)


def _local(d: date, t: time, tz: ZoneInfo) -> datetime:
    """The UTC instant of wall-clock `t` on day `d` in `tz` (fold=0 in gaps and overlaps)."""
    return datetime.combine(d, t, tzinfo=tz).astimezone(UTC)


# --- one layer's rotation ----------------------------------------------------------


def rotation_boundary(layer: LayerSpec, k: int, tz: ZoneInfo) -> datetime:
    """Start of shift k (k may be negative: before the rotation's start)."""
    if layer.shift_unit == HOURS:
        return _local(layer.start_date, layer.handoff_time, tz) + timedelta(hours=k * layer.shift_length)
    days = layer.shift_length * (7 if layer.shift_unit == WEEKS else 1)
    return _local(layer.start_date + timedelta(days=k * days), layer.handoff_time, tz)


def shift_index(layer: LayerSpec, at: datetime, tz: ZoneInfo) -> int:
    """k such that boundary(k) <= at < boundary(k+1)."""
    at = _require_aware(at)
    anchor = _local(layer.start_date, layer.handoff_time, tz)
    hours = layer.shift_length * {HOURS: 1, DAYS: 24, WEEKS: 168}[layer.shift_unit]
    k = int((at - anchor) // timedelta(hours=hours))
    # Local-day shifts drift from the estimate by at most the DST hours: correct it.
    while rotation_boundary(layer, k, tz) > at:
        k -= 1
    while rotation_boundary(layer, k + 1, tz) <= at:
        k += 1
    return k


def rotation_at(layer: LayerSpec, at: datetime, tz: ZoneInfo) -> int | None:
    """The participant whose rotation shift contains `at` (restrictions ignored)."""
    if not layer.participants:
        return None
    k = shift_index(layer, at, tz)
    if k < 0:
        return None  # before the rotation starts
    return layer.participants[k % len(layer.participants)]


def rotation_shifts(layer: LayerSpec, start: datetime, end: datetime, tz: ZoneInfo) -> list[Shift]:
    """The rotation's shifts overlapping [start, end), whole (not clipped)."""
    start, end = _require_aware(start), _require_aware(end)
    if not layer.participants or end <= start:
        return []
    k = max(shift_index(layer, start, tz), 0)
    shifts = []
    while (begin := rotation_boundary(layer, k, tz)) < end:
        shifts.append(
            Shift(layer.participants[k % len(layer.participants)], begin, rotation_boundary(layer, k + 1, tz), layer)
        )
        k += 1
    return shifts


# --- restrictions ------------------------------------------------------------------


def is_restricted(layer: LayerSpec) -> bool:
    return layer.restrict_start is not None or bool(layer.restrict_weekdays)


def in_window(at: datetime, tz: ZoneInfo, start: time | None, end: time | None, weekdays) -> bool:
    """Is `at` inside the local window [start, end) on one of `weekdays` (of the window's start)?"""
    local = _require_aware(at).astimezone(tz)
    weekdays = set(weekdays)
    if start is None or start == end:
        return not weekdays or local.weekday() in weekdays
    for day in (local.date(), local.date() - timedelta(days=1)):
        if weekdays and day.weekday() not in weekdays:
            continue
        begin = _local(day, start, tz)
        finish = _local(day if end > start else day + timedelta(days=1), end, tz)
        if begin <= at < finish:
            return True
    return False


def window_boundaries(start_at: datetime, end_at: datetime, tz: ZoneInfo, start: time | None, end: time | None) -> list[datetime]:
    """Instants in [start_at, end_at] where the window may open or close."""
    times = [t for t in (start, end) if t is not None] or [time(0)]
    times.append(time(0))  # weekday changes at local midnight
    day = _require_aware(start_at).astimezone(tz).date() - timedelta(days=1)
    last = _require_aware(end_at).astimezone(tz).date() + timedelta(days=1)
    points = []
    while day <= last:
        for t in times:
            p = _local(day, t, tz)
            if start_at <= p <= end_at:
                points.append(p)
        day += timedelta(days=1)
    return points


def next_window_start(at: datetime, tz: ZoneInfo, start: time | None, end: time | None, weekdays, horizon_days: int = 14) -> datetime | None:
    """The first instant >= at inside the window (at itself if it is inside)."""
    at = _require_aware(at)
    if in_window(at, tz, start, end, weekdays):
        return at
    for p in sorted(window_boundaries(at, at + timedelta(days=horizon_days), tz, start, end)):
        if p >= at and in_window(p, tz, start, end, weekdays):
            return p
    return None


def layer_covers(layer: LayerSpec, at: datetime, tz: ZoneInfo) -> bool:
    if not is_restricted(layer):
        return True
    return in_window(at, tz, layer.restrict_start, layer.restrict_end, layer.restrict_weekdays)


# --- the whole schedule ------------------------------------------------------------


def _ranked_layers(spec: ScheduleSpec) -> list[LayerSpec]:
    return sorted(spec.layers, key=lambda layer: (layer.level, layer.id or 0), reverse=True)


def who_is_on_call(schedule, at: datetime) -> OnCall | None:
    """Who is on call on `schedule` (a ScheduleSpec or a Schedule model) at `at`."""
    spec = schedule if isinstance(schedule, ScheduleSpec) else spec_of(schedule)
    at = _require_aware(at)
    covering = [o for o in spec.overrides if o.start <= at < o.end]
    if covering:
        override = max(covering, key=lambda o: (o.id or 0, o.start))
        return OnCall(override.user_id, override=override)
    tz = spec.tz
    for layer in _ranked_layers(spec):
        if layer_covers(layer, at, tz):
            user_id = rotation_at(layer, at, tz)
            if user_id is not None:
                return OnCall(user_id, layer=layer)
    return None


def shifts(schedule, start: datetime, end: datetime) -> list[Shift]:
    """The final schedule over [start, end): consecutive shifts of one person from one
    source (layer or override), clipped to the range.  Gaps mean nobody is on call."""
    spec = schedule if isinstance(schedule, ScheduleSpec) else spec_of(schedule)
    start, end = _require_aware(start), _require_aware(end)
    if end <= start:
        return []
    tz = spec.tz
    points = {start, end}
    for layer in spec.layers:
        for s in rotation_shifts(layer, start, end, tz):
            points.update(p for p in (s.start, s.end) if start < p < end)
        if is_restricted(layer):
            points.update(
                p for p in window_boundaries(start, end, tz, layer.restrict_start, layer.restrict_end) if start < p < end
            )
    for o in spec.overrides:
        points.update(p for p in (o.start, o.end) if start < p < end)
    ordered = sorted(points)
    result: list[Shift] = []
    for begin, finish in zip(ordered, ordered[1:]):
        who = who_is_on_call(spec, begin)
        if who is None:
            continue
        last = result[-1] if result else None
        if (
            last is not None
            and last.end == begin
            and (last.user_id, last.layer, last.override) == (who.user_id, who.layer, who.override)
        ):
            result[-1] = Shift(last.user_id, last.start, finish, last.layer, last.override)
        else:
            result.append(Shift(who.user_id, begin, finish, who.layer, who.override))
    return result


# --- from the models ---------------------------------------------------------------


def spec_of(schedule, *, overrides_after: datetime | None = None) -> ScheduleSpec:
    """Load a Schedule model into a ScheduleSpec (overrides ending after
    `overrides_after`, or all of them)."""
    from .models import LayerMember, Override

    layers = list(schedule.layers.all())
    members: dict[int, list[int]] = {}
    for layer_id, user_id in LayerMember.objects.filter(layer__in=layers).values_list("layer_id", "user_id"):
        members.setdefault(layer_id, []).append(user_id)
    overrides = Override.objects.filter(schedule=schedule)
    if overrides_after is not None:
        overrides = overrides.filter(end__gt=overrides_after)
    return ScheduleSpec(
        time_zone=schedule.time_zone,
        id=schedule.pk,
        name=schedule.name,
        layers=tuple(
            LayerSpec(
                participants=tuple(members.get(layer.pk, ())),
                shift_length=layer.shift_length,
                shift_unit=layer.shift_unit,
                handoff_time=layer.handoff_time,
                start_date=layer.start_date,
                level=layer.level,
                restrict_start=layer.restrict_start,
                restrict_end=layer.restrict_end,
                restrict_weekdays=frozenset(layer.restrict_weekdays or ()),
                id=layer.pk,
                name=layer.name,
            )
            for layer in layers
        ),
        overrides=tuple(OverrideSpec(o.user_id, o.start, o.end, o.pk) for o in overrides.order_by("start", "pk")),
    )
