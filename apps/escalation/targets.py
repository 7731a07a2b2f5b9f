"""Resolve a rule's targets to people at a moment, through the schedules.

A Resolver caches what it loads (rules, schedules, team members, usernames) for
the life of one tick or one dry run, so a batch of hundreds of incidents of a few
services costs a handful of queries.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.contrib.auth import get_user_model

from apps.accounts.models import Membership
from apps.schedules import oncall
from apps.schedules.models import Schedule

from .models import EscalationRule


@dataclass
class RuleData:
    id: int
    position: int
    delay_minutes: int
    channels: list[str]
    user_ids: list[int] = field(default_factory=list)
    schedule_ids: list[int] = field(default_factory=list)
    team_ids: list[int] = field(default_factory=list)


class Resolver:
    def __init__(self):
        self._rules: dict[int, list[RuleData]] = {}
        self._schedules: dict[int, oncall.ScheduleSpec] = {}
        self._teams: dict[int, list[int]] = {}
        self._usernames: dict[int, str] = {}
        self._overrides_after: datetime | None = None

    def rules(self, policy_id: int) -> list[RuleData]:
        if policy_id not in self._rules:
            self.load_rules([policy_id])
        return self._rules[policy_id]

    def load_rules(self, policy_ids) -> None:
        missing = [p for p in set(policy_ids) if p not in self._rules]
        if not missing:
            return
        by_id = {}
        for policy_id in missing:
            self._rules[policy_id] = []
        for rule in EscalationRule.objects.filter(policy_id__in=missing).order_by("position", "pk"):
            data = RuleData(rule.pk, rule.position, rule.delay_minutes, list(rule.channels))
            by_id[rule.pk] = data
            self._rules[rule.policy_id].append(data)
        through = EscalationRule.users.through
        for rule_id, user_id in through.objects.filter(escalationrule_id__in=by_id).values_list("escalationrule_id", "user_id"):
            by_id[rule_id].user_ids.append(user_id)
        through = EscalationRule.schedules.through
        for rule_id, schedule_id in through.objects.filter(escalationrule_id__in=by_id).values_list(
            "escalationrule_id", "schedule_id"
        ):
            by_id[rule_id].schedule_ids.append(schedule_id)
        through = EscalationRule.teams.through
        for rule_id, team_id in through.objects.filter(escalationrule_id__in=by_id).values_list("escalationrule_id", "team_id"):
            by_id[rule_id].team_ids.append(team_id)

    def schedule(self, schedule_id: int, now: datetime) -> oncall.ScheduleSpec | None:
        if schedule_id not in self._schedules:
            schedule = Schedule.objects.filter(pk=schedule_id).first()
            if schedule is None:
                return None
            # Overrides that ended before `now` can never matter to this resolver.
            self._schedules[schedule_id] = oncall.spec_of(schedule, overrides_after=now)
        return self._schedules[schedule_id]

    def team_members(self, team_id: int) -> list[int]:
        if team_id not in self._teams:
            self._teams[team_id] = list(
                Membership.objects.filter(team_id=team_id, user__is_active=True).order_by("pk").values_list("user_id", flat=True)
            )
        return self._teams[team_id]

    def resolve(self, rule: RuleData, at: datetime) -> dict[int, list[dict]]:
        """user id -> why they are targeted (one entry per target that names them)."""
        targets: dict[int, list[dict]] = {}
        for user_id in rule.user_ids:
            targets.setdefault(user_id, []).append({"source": "user"})
        for schedule_id in rule.schedule_ids:
            spec = self.schedule(schedule_id, at)
            who = oncall.who_is_on_call(spec, at) if spec is not None else None
            if who is not None:
                targets.setdefault(who.user_id, []).append(
                    {"source": "schedule", "schedule": schedule_id, "schedule_name": spec.name, **_why(who)}
                )
        for team_id in rule.team_ids:
            for user_id in self.team_members(team_id):
                targets.setdefault(user_id, []).append({"source": "team", "team": team_id})
        return targets

    def usernames(self, user_ids) -> dict[int, str]:
        missing = set(user_ids) - set(self._usernames)
        if missing:
            User = get_user_model()
            for pk, name in User.objects.filter(pk__in=missing).values_list("pk", User.USERNAME_FIELD):
                self._usernames[pk] = name
        return self._usernames


def _why(who: oncall.OnCall) -> dict:
    if who.override is not None:
        return {"via": "override", "override": who.override.id}
    return {"via": "layer", "layer": who.layer.id, "layer_name": who.layer.name}
