"""Reads: "who will be paged, when" - a dry run of a policy over the schedules."""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.utils import timezone

from apps.incidents.models import Incident
from apps.schedules import oncall

from .models import EscalationPolicy, EscalationState
from .targets import Resolver

DEFAULT_STEPS = 6


@dataclass
class PlannedStep:
    at: datetime
    level: int
    cycle: int
    channels: list[str]
    targets: list[tuple[object, list[dict]]] = field(default_factory=list)  # (user, why)
    digest: bool = False
    deferred: bool = False  # moved to the start of business hours


def dry_run(subject, now: datetime | None = None, *, steps: int = DEFAULT_STEPS):
    """For an Incident: its next steps (empty when it does not escalate now).  For a
    Service: {policy: steps} as if an incident of each variant opened now.  For an
    EscalationPolicy: its steps as if an incident it applies to opened now."""
    now = now or timezone.now()
    resolver = Resolver()
    if isinstance(subject, Incident):
        state = EscalationState.objects.select_related("policy").filter(incident=subject).first()
        if state is None or state.status != EscalationState.Status.ACTIVE or subject.status != Incident.Status.TRIGGERED:
            return []
        return _simulate(state.policy, resolver, state.level, state.cycle, state.repeats_done, max(state.next_at, now), steps)
    if isinstance(subject, EscalationPolicy):
        return _from_the_start(subject, resolver, now, steps)
    result = {}
    for policy in EscalationPolicy.objects.filter(service=subject).order_by("pk"):
        if resolver.rules(policy.pk):
            result[policy] = _from_the_start(policy, resolver, now, steps)
    return result


def _from_the_start(policy, resolver, now, steps) -> list[PlannedStep]:
    rules = resolver.rules(policy.pk)
    if not rules:
        return []
    return _simulate(policy, resolver, 0, 0, 0, now + timedelta(minutes=rules[0].delay_minutes), steps)


def _simulate(policy, resolver, level, cycle, repeats_done, at, steps) -> list[PlannedStep]:
    rules = resolver.rules(policy.pk)
    tz = oncall.ZoneInfo(policy.time_zone)
    planned = []
    while len(planned) < steps and level < len(rules):
        deferred = False
        if policy.business_hours_only:
            start = oncall.next_window_start(at, tz, policy.business_start, policy.business_end, policy.business_weekdays)
            if start is None:
                break
            deferred, at = start != at, start
        rule = rules[0] if policy.digest_only else rules[level]
        targets = resolver.resolve(rule, at)
        planned.append(
            PlannedStep(at, level, cycle, ["email"] if policy.digest_only else list(rule.channels),
                        list(targets.items()), policy.digest_only, deferred)
        )
        if policy.digest_only:
            break
        if level + 1 < len(rules):
            level += 1
            at = at + timedelta(minutes=rules[level].delay_minutes)
        elif repeats_done < policy.repeat:
            gap = policy.repeat_delay_minutes if policy.repeat_delay_minutes is not None else rules[-1].delay_minutes
            level, cycle, repeats_done = 0, cycle + 1, repeats_done + 1
            at = at + timedelta(minutes=gap)
        else:
            break
    users = get_user_model().objects.in_bulk({u for step in planned for u, _ in step.targets})
    for step in planned:
        step.targets = [(users.get(u), why) for u, why in step.targets]
    return planned
