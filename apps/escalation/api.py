"""The REST API for escalation policies (/api/v1/escalation-policies/) and "who is on
call" (/api/v1/oncall/), on the configuration API's base (apps/accounts/config_api.py).

Policies: API keys with policies:read / policies:write within their team, or a
signed-in user; the service's team's viewers read, its admins change.  A policy is one
severity variant of its service (`severities`; empty: the catch-all) and carries its
rules (levels): given in a write, `rules` becomes exactly the policy's rules, matched
by `id` or `external_id` as a schedule's layers are (apps/schedules/api.py).

Who is on call answers from the same code as the portal: a schedule from
apps.schedules.oncall (who, until when, from which layer or override), a policy or a
service from selectors.dry_run (who would be paged at each level).
"""

import re
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone
from django_filters import rest_framework as filters
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from apps.accounts import roles
from apps.accounts.config_api import ConfigViewSet, ModelValidated, access
from apps.incidents.models import Service, Severity
from apps.incidents.serializers import ErrorSerializer
from apps.schedules import oncall, selectors as schedule_selectors
from apps.schedules.api import FIELD_MAPPING, AdministeredPk, AdministeredSlug, IndexedErrors, save_children, team_field, username_field, weekdays_field
from apps.schedules.models import Schedule

from . import selectors
from .models import EscalationPolicy, EscalationRule

MAX_RULES = 50
MAX_TARGETS = 200


# --- policies ----------------------------------------------------------------------


class _Related(serializers.ListField):
    """A many-to-many read as a list of its (prefetched) rows, written as one."""

    def get_attribute(self, instance):
        return list(getattr(instance, self.source).all())


class RuleSerializer(serializers.ModelSerializer):
    id = serializers.IntegerField(required=False, help_text="A rule of this policy to change; leave out to add one.")
    position = serializers.IntegerField(
        required=False, min_value=0, max_value=32767,
        help_text="Order of the levels (then the list's order); left out: its place in the list.",
    )
    users = _Related(child=username_field(), max_length=MAX_TARGETS, required=False,
                     help_text="Usernames paged at this level (members of the teams you administer).")
    teams = _Related(child=team_field(), max_length=MAX_TARGETS, required=False,
                     help_text="Slugs of teams whose every member is paged.")
    schedules = _Related(
        child=AdministeredPk(queryset=Schedule.objects.all(),
                             error_messages={"does_not_exist": "No schedule {pk_value} of the teams you administer."}),
        max_length=MAX_TARGETS, required=False, help_text="Ids of schedules whose on-call person at that moment is paged.",
    )

    class Meta:
        model = EscalationRule
        fields = ["id", "external_id", "position", "delay_minutes", "channels", "users", "teams", "schedules"]
        extra_kwargs = {"external_id": {"validators": []}}  # full_clean judges it, knowing which rule this is


def _set_targets(rule: EscalationRule, extra: dict) -> None:
    for name in ("users", "teams", "schedules"):
        if name in extra:
            getattr(rule, name).set(extra[name])


class PolicySerializer(IndexedErrors, ModelValidated):
    serializer_field_mapping = FIELD_MAPPING
    service = AdministeredSlug(
        slug_field="slug", queryset=Service.objects.all(), help_text="Slug of the service.",
        error_messages={"does_not_exist": "No service {value} of the teams you administer."},
    )
    business_weekdays = weekdays_field(help_text="Business hours: on these weekdays (0 Monday … 6 Sunday); empty: every day.")
    rules = RuleSerializer(many=True, required=False, max_length=MAX_RULES,
                           help_text="The levels. Given in a write, they become exactly the policy's rules.")

    class Meta:
        model = EscalationPolicy
        fields = [
            "id", "external_id", "name", "service", "severities", "repeat", "repeat_delay_minutes",
            "ack_timeout_minutes", "digest_only", "business_hours_only", "time_zone", "business_start",
            "business_end", "business_weekdays", "rules",
        ]
        read_only_fields = ["id"]

    def create(self, validated_data):
        rules = validated_data.pop("rules", None)
        return self._with_rules(super().create(validated_data), rules)

    def update(self, instance, validated_data):
        rules = validated_data.pop("rules", None)
        return self._with_rules(super().update(instance, validated_data), rules)

    def _with_rules(self, policy, rules):
        if rules is not None:
            rules = [{"position": index, **rule} for index, rule in enumerate(rules)]
            try:
                save_children("policy", policy, EscalationRule, rules, many={"users", "teams", "schedules"},
                              after_save=_set_targets)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"rules": exc.detail}) from None
        return policy


class PolicyFilter(filters.FilterSet):
    service = filters.CharFilter(field_name="service__slug", help_text="Service slug.")
    severity = filters.ChoiceFilter(choices=Severity.choices, method="_severity", help_text="Variants for this severity.")

    class Meta:
        model = EscalationPolicy
        fields = ["external_id", "service", "name", "severity"]

    def _severity(self, queryset, name, value):
        return queryset.filter(severities__contains=[value])


@extend_schema_view(
    list=extend_schema(summary="List your teams' escalation policies (one per severity variant), with their rules"),
    retrieve=extend_schema(summary="An escalation policy with its rules"),
    create=extend_schema(summary="Add an escalation policy (with its rules)"),
    update=extend_schema(summary="Replace an escalation policy; given rules become exactly its rules"),
    partial_update=extend_schema(summary="Change some of a policy's fields (rules, if given, are replaced)"),
    destroy=extend_schema(summary="Delete an escalation policy and its rules"),
)
class PolicyViewSet(ConfigViewSet):
    queryset = EscalationPolicy.objects.select_related("service").prefetch_related(
        "rules__users", "rules__teams", "rules__schedules"
    ).order_by("service__slug", "name", "pk")
    serializer_class = PolicySerializer
    filterset_class = PolicyFilter
    scope, team_path, resource = "policies", "service__team", "policy"
    lookup_value_regex = r"[0-9]+"


# --- who is on call ----------------------------------------------------------------

OFFSET_AS_SPACE = re.compile(r" (\d\d:?\d\d)$")  # a "+" left unencoded in the query arrives as a space


def _at(value: str | None) -> datetime:
    if value is None:
        return timezone.now()
    text = OFFSET_AS_SPACE.sub(r"+\1", value.strip())
    try:
        at = datetime.fromisoformat(text)
    except ValueError:
        at = None
    if at is None or at.tzinfo is None or at.utcoffset() is None:
        raise exceptions.ValidationError({"at": ["Give an RFC 3339 time with its offset, such as 2025-06-02T10:00:00Z."]})
    if not 1970 <= at.year <= 2999:
        raise exceptions.ValidationError({"at": ["Give a time between the years 1970 and 2999."]})
    return at


def _find(queryset, name: str, value: str, *, by_slug: bool = False):
    """By external_id first, else by id (or slug); within the principal's teams."""
    if "\x00" in value or len(value) > 200:
        raise exceptions.ValidationError({name: [f"No {name} {value[:50]!r} in your teams."]})
    if by_slug:
        found = queryset.filter(slug=value).first()
    else:
        found = queryset.filter(external_id=value).first()
        if found is None and value.isascii() and value.isdigit() and int(value) < 2**31:
            found = queryset.filter(pk=int(value)).first()
    if found is None:
        raise exceptions.ValidationError({name: [f"No {name} {value!r} in your teams."]})
    return found


class OnCallShiftSerializer(serializers.Serializer):
    user = serializers.CharField(allow_null=True, help_text="Username (null if the user was deleted).")
    user_id = serializers.IntegerField()
    start = serializers.DateTimeField(allow_null=True, help_text="When this shift began (null: before the 14 days looked at).")
    end = serializers.DateTimeField(allow_null=True, help_text="Until when (null: beyond the 14 days looked at).")
    source = serializers.ChoiceField(["layer", "override"])
    layer_id = serializers.IntegerField(allow_null=True)
    layer_name = serializers.CharField(allow_null=True)
    override_id = serializers.IntegerField(allow_null=True)


class ScheduleOnCallSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    time_zone = serializers.CharField()
    on_call = OnCallShiftSerializer(allow_null=True, help_text="Who is on call at `at`; null: nobody.")
    next = OnCallShiftSerializer(allow_null=True, help_text="The next shift within 14 days after `at`.")


class ReasonSerializer(serializers.Serializer):
    source = serializers.ChoiceField(["user", "schedule", "team"], help_text="Named by the rule, on call on a schedule, or a team member.")
    schedule_id = serializers.IntegerField(allow_null=True)
    schedule_name = serializers.CharField(allow_null=True)
    via = serializers.CharField(allow_null=True, help_text="For a schedule: layer or override.")
    layer_id = serializers.IntegerField(allow_null=True)
    layer_name = serializers.CharField(allow_null=True)
    override_id = serializers.IntegerField(allow_null=True)
    team_id = serializers.IntegerField(allow_null=True)


class TargetSerializer(serializers.Serializer):
    user = serializers.CharField(allow_null=True, help_text="Username (null if the user was deleted).")
    user_id = serializers.IntegerField(allow_null=True)
    reasons = ReasonSerializer(many=True)


class LevelSerializer(serializers.Serializer):
    level = serializers.IntegerField(help_text="Index of the rule (0: the first).")
    cycle = serializers.IntegerField(help_text="0, then 1… for each repeat of the policy.")
    at = serializers.DateTimeField(help_text="When it would page.")
    channels = serializers.ListField(child=serializers.CharField(), help_text="Empty: each person's own notification rules.")
    digest = serializers.BooleanField(help_text="An email digest entry, not a page.")
    deferred = serializers.BooleanField(help_text="Moved to the start of the policy's business hours.")
    targets = TargetSerializer(many=True)


class PolicyPlanSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    external_id = serializers.CharField(allow_null=True)
    name = serializers.CharField()
    service = serializers.CharField(help_text="Service slug.")
    severities = serializers.ListField(child=serializers.CharField(), help_text="Empty: the catch-all variant.")
    levels = LevelSerializer(many=True, help_text="Who would be paged at each level (up to 6 steps, repeats included).")


class OnCallSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    schedule = ScheduleOnCallSerializer(allow_null=True, help_text="For ?schedule=.")
    service = serializers.CharField(allow_null=True, help_text="For ?service=: its slug.")
    policies = PolicyPlanSerializer(many=True, help_text="For ?policy= (that one) or ?service= (each variant with rules).")


def _shift(s: oncall.Shift | None, users, *, window: tuple[datetime, datetime]) -> dict | None:
    if s is None:
        return None
    user = users.get(s.user_id)
    return {
        "user": user.get_username() if user else None, "user_id": s.user_id,
        "start": s.start if s.start > window[0] else None, "end": s.end if s.end < window[1] else None,
        "source": "override" if s.override is not None else "layer",
        "layer_id": s.layer.id if s.override is None else None,
        "layer_name": s.layer.name if s.override is None else None,
        "override_id": s.override.id if s.override is not None else None,
    }


def schedule_on_call(schedule: Schedule, at: datetime) -> dict:
    """Who is on call at `at` and until when, and the next shift (the portal's on-call
    page's columns, from the same computation)."""
    horizon = timedelta(days=schedule_selectors.PREVIEW_DAYS)
    spec = oncall.spec_of(schedule, overrides_after=at - horizon)
    before = oncall.shifts(spec, at - horizon, at + timedelta(microseconds=1))
    after = oncall.shifts(spec, at, at + horizon)
    current = after[0] if after and after[0].start <= at else None
    if current is not None and before and before[-1].end > at:  # the same shift, seen from before `at`
        current = oncall.Shift(current.user_id, before[-1].start, current.end, current.layer, current.override)
    following = next((s for s in after if s.start > at), None)
    users = get_user_model().objects.in_bulk({s.user_id for s in (current, following) if s})
    return {
        "id": schedule.pk, "external_id": schedule.external_id, "name": schedule.name, "time_zone": schedule.time_zone,
        "on_call": _shift(current, users, window=(at - horizon, at + horizon)),
        "next": _shift(following, users, window=(at - horizon, at + horizon)),
    }


def _reason(why: dict) -> dict:
    return {
        "source": why["source"], "schedule_id": why.get("schedule"), "schedule_name": why.get("schedule_name"),
        "via": why.get("via"), "layer_id": why.get("layer"), "layer_name": why.get("layer_name"),
        "override_id": why.get("override"), "team_id": why.get("team"),
    }


def policy_plan(policy: EscalationPolicy, steps: list[selectors.PlannedStep]) -> dict:
    return {
        "id": policy.pk, "external_id": policy.external_id, "name": policy.name, "service": policy.service.slug,
        "severities": list(policy.severities),
        "levels": [
            {
                "level": step.level, "cycle": step.cycle, "at": step.at, "channels": list(step.channels),
                "digest": step.digest, "deferred": step.deferred,
                "targets": [
                    {"user": user.get_username() if user else None, "user_id": user.pk if user else None,
                     "reasons": [_reason(w) for w in why]}
                    for user, why in step.targets
                ],
            }
            for step in steps
        ],
    }


KINDS = ("schedule", "policy", "service")


@extend_schema(
    summary="Who is on call: on a schedule at a moment and until when, or who a policy or service would page at each level",
    description=(
        "Give one of `schedule` (id or external_id; scope schedules:read), `policy` (id or external_id) or `service` "
        "(slug; both scope policies:read), and optionally `at` (RFC 3339 with an offset; default now). Another team's "
        "object answers as an unknown one: a 400 naming the parameter."
    ),
    parameters=[
        OpenApiParameter("schedule", str, description="Schedule id or external_id (external_id is tried first)."),
        OpenApiParameter("policy", str, description="Escalation policy id or external_id (external_id is tried first)."),
        OpenApiParameter("service", str, description="Service slug: each of its policy variants."),
        OpenApiParameter("at", OpenApiTypes.DATETIME, description="The moment (RFC 3339 with offset); default now."),
    ],
    responses={
        200: OnCallSerializer,
        400: OpenApiResponse(ErrorSerializer, description="No or several of schedule/policy/service, one not of your teams, or a bad `at`; `field` names it."),
    },
)
class OnCallView(APIView):
    def _kind(self) -> str | None:
        given = [k for k in KINDS if k in self.request.query_params]
        return given[0] if len(given) == 1 else None

    def get_permissions(self):
        if self._kind() in ("policy", "service"):
            return [access("policies", "service__team")()]
        return [access("schedules", "team")()]

    def get(self, request):
        kind = self._kind()
        if kind is None:
            raise exceptions.ValidationError({"schedule": ["Give one of schedule, policy or service."]})
        at = _at(request.query_params.get("at"))
        value = request.query_params[kind]
        body = {"at": at, "schedule": None, "service": None, "policies": []}
        if kind == "schedule":
            schedules = roles.scoped(Schedule.objects.all(), request.user, roles.VIEWER, team="team")
            body["schedule"] = schedule_on_call(_find(schedules, kind, value), at)
        elif kind == "policy":
            policies = roles.scoped(EscalationPolicy.objects.select_related("service"), request.user, roles.VIEWER)
            policy = _find(policies, kind, value)
            body["policies"] = [policy_plan(policy, selectors.dry_run(policy, at))]
        else:
            services = roles.scoped(Service.objects.all(), request.user, roles.VIEWER, team="team")
            service = _find(services, kind, value, by_slug=True)
            body["service"] = service.slug
            body["policies"] = [policy_plan(p, steps) for p, steps in selectors.dry_run(service, at).items()]
        return Response(OnCallSerializer(body).data)
