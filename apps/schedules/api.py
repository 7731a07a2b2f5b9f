"""The REST API for schedules (/api/v1/schedules/, /api/v1/overrides/), on the
configuration API's base (apps/accounts/config_api.py).

Who may call: API keys with schedules:read (reads) or schedules:write (changes) within
their team, or a signed-in user; the team's viewers read, its admins change.  Another
team's schedule is a 404.  Every change is audited (schedule.created, .changed,
.deleted; override.…).

A schedule carries its layers (rotations), each with its participants in rotation
order and its optional time-of-day / weekday restriction: given in a write, `layers`
becomes exactly the schedule's layers (a layer named by `id` or `external_id` is
changed in place, one named by neither is added, one left out is deleted).
Overrides are their own resource: they come and go by the day, and a tool that keeps
the schedule as code need not know them.

Writes are judged as the admin forms judge them: the models' full_clean, and choices
of teams, schedules and people limited to the teams the principal administers (as
admin's choice lists are, apps/accounts/team_admin.py).  Who is on call is
/api/v1/oncall/ (apps/escalation/api.py: it also answers for policies).
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import models
from django_filters import rest_framework as filters
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers

from apps.accounts.config_api import ConfigViewSet, ModelValidated
from apps.accounts.models import Team
from apps.accounts.team_admin import _limit as limit_to_administered

from .models import Layer, LayerMember, Override, Schedule, Weekday

MAX_LAYERS = 50
MAX_PARTICIPANTS = 200


class _Administered:
    """A related field whose choices are those of the teams the principal administers,
    as admin's choice lists (another team's object is "does not exist", as none)."""

    def get_queryset(self):
        request = self.context.get("request")
        queryset = super().get_queryset()
        return limit_to_administered(queryset, request.user) if request is not None else queryset.none()


class AdministeredSlug(_Administered, serializers.SlugRelatedField):
    pass


class AdministeredPk(_Administered, serializers.PrimaryKeyRelatedField):
    pass


@extend_schema_field({"type": "integer", "minimum": 0, "maximum": 6, "description": "0 Monday … 6 Sunday."})
class WeekdayField(serializers.ChoiceField):
    """A weekday number; one schema for the layers' and the policies' weekdays."""

    def __init__(self, **kw):
        super().__init__(choices=Weekday.choices, **kw)


@extend_schema_field({"type": "string", "pattern": r"^\d\d:\d\d(:\d\d(\.\d{1,6})?)?$",
                      "description": "A local wall-clock time, HH:MM[:SS], without an offset."})
class LocalTimeField(serializers.TimeField):
    """A wall-clock time in the object's time zone: OpenAPI's "time" format would
    demand an offset, which these times do not have."""


# The models' TimeFields are local wall-clock times (LocalTimeField).
FIELD_MAPPING = {**serializers.ModelSerializer.serializer_field_mapping, models.TimeField: LocalTimeField}


def weekdays_field(**kw):
    return serializers.ListField(child=WeekdayField(), required=False, max_length=7, **kw)


def username_field(**kw):
    return AdministeredSlug(
        slug_field="username", queryset=get_user_model().objects.all(),
        error_messages={"does_not_exist": "No user {value} in the teams you administer."}, **kw,
    )


def team_field(**kw):
    return AdministeredSlug(
        slug_field="slug", queryset=Team.objects.all(),
        error_messages={"does_not_exist": "No team {value} that you administer."}, **kw,
    )


def indexed(detail):
    """DRF's errors of a list of objects are a list holding {} for the good ones; the
    API's error body names the first field it finds (apps/incidents/api.py), so here
    they become {index: errors}: "layers.2.handoff_time"."""
    if isinstance(detail, list) and detail and all(isinstance(d, dict) for d in detail):
        return {str(i): indexed(d) for i, d in enumerate(detail) if d}
    if isinstance(detail, dict):
        return {k: indexed(v) for k, v in detail.items()}
    return detail


class IndexedErrors:
    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError(indexed(exc.detail)) from None


def save_children(parent_field: str, parent, model, items: list[dict], *, many: dict, after_save) -> None:
    """Make `parent`'s children of `model` exactly `items` (validated data): one with an
    `id` of the parent's, or an `external_id` one of them has, is changed; others are
    added; those left out are deleted.  Each is judged by full_clean; errors name
    "<index>.<field>".  `many`: item keys set after the save by after_save(child, values)."""
    existing = {c.pk: c for c in model.objects.filter(**{parent_field: parent})}
    by_external_id = {c.external_id: c for c in existing.values() if c.external_id}
    kept, errors, later = set(), {}, []
    for index, item in enumerate(items):
        item = dict(item)
        pk = item.pop("id", None)
        extra = {name: item.pop(name) for name in many if name in item}
        child = existing.get(pk) if pk is not None else by_external_id.get(item.get("external_id"))
        if pk is not None and child is None:
            errors[str(index)] = {"id": [f"No {model._meta.verbose_name} {pk} here: leave id out to add one."]}
            continue
        if child is not None and child.pk in kept:
            errors[str(index)] = {"id": [f"{model._meta.verbose_name.capitalize()} {child.pk} is given twice."]}
            continue
        child = child or model(**{parent_field: parent})
        for name, value in item.items():
            setattr(child, name, value)
        try:
            child.full_clean(exclude=[parent_field])
        except ModelValidationError as exc:
            errors[str(index)] = exc.message_dict
            continue
        child.save()
        kept.add(child.pk)
        later.append((child, extra))
    if errors:
        raise serializers.ValidationError(errors)
    model.objects.filter(**{parent_field: parent}).exclude(pk__in=kept).delete()
    for child, extra in later:
        after_save(child, extra)


# --- schedules ---------------------------------------------------------------------


class Participants(serializers.ListField):
    """A layer's participants, in rotation order (LayerMember positions)."""

    def get_attribute(self, layer):
        return [member.user for member in layer.members.all()]


class LayerSerializer(serializers.ModelSerializer):
    serializer_field_mapping = FIELD_MAPPING
    id = serializers.IntegerField(required=False, help_text="A layer of this schedule to change; leave out to add one.")
    restrict_weekdays = weekdays_field(
        help_text="Restriction: only windows starting on these weekdays (0 Monday … 6 Sunday); empty: every day."
    )
    participants = Participants(
        child=username_field(), max_length=MAX_PARTICIPANTS, required=False,
        help_text="Usernames in rotation order (one may appear more than once). Members of the teams you administer.",
    )

    class Meta:
        model = Layer
        fields = [
            "id", "external_id", "name", "level", "shift_length", "shift_unit", "handoff_time", "start_date",
            "restrict_start", "restrict_end", "restrict_weekdays", "participants",
        ]
        # Unique among all layers: full_clean judges it, knowing which layer this is.
        extra_kwargs = {
            "external_id": {"validators": []},
            "restrict_start": {"help_text": "Restriction: the layer covers only the local time of day from here (with restrict_end; a window that ends before it starts wraps midnight)."},
            "restrict_end": {"help_text": "Restriction: ... until here (schedule's time zone). Both or neither."},
        }


def _set_participants(layer: Layer, extra: dict) -> None:
    if "participants" in extra:
        LayerMember.objects.filter(layer=layer).delete()
        LayerMember.objects.bulk_create(
            LayerMember(layer=layer, user=user, position=position) for position, user in enumerate(extra["participants"])
        )


class ScheduleSerializer(IndexedErrors, ModelValidated):
    team = team_field(help_text="Slug of the team the schedule belongs to.")
    layers = LayerSerializer(
        many=True, required=False, max_length=MAX_LAYERS,
        help_text="The rotations. Given in a write, they become exactly the schedule's layers.",
    )

    class Meta:
        model = Schedule
        fields = ["id", "external_id", "name", "team", "time_zone", "layers"]
        read_only_fields = ["id"]

    def create(self, validated_data):
        layers = validated_data.pop("layers", None)
        return self._with_layers(super().create(validated_data), layers)

    def update(self, instance, validated_data):
        layers = validated_data.pop("layers", None)
        return self._with_layers(super().update(instance, validated_data), layers)

    def _with_layers(self, schedule, layers):
        if layers is not None:
            try:
                save_children("schedule", schedule, Layer, layers, many={"participants"}, after_save=_set_participants)
            except serializers.ValidationError as exc:
                raise serializers.ValidationError({"layers": exc.detail}) from None
        return schedule


class ScheduleFilter(filters.FilterSet):
    team = filters.CharFilter(field_name="team__slug", help_text="Team slug.")

    class Meta:
        model = Schedule
        fields = ["external_id", "team", "name"]


@extend_schema_view(
    list=extend_schema(summary="List your teams' schedules, with their layers"),
    retrieve=extend_schema(summary="A schedule with its layers, participants and restrictions"),
    create=extend_schema(summary="Add a schedule (with its layers)"),
    update=extend_schema(summary="Replace a schedule; given layers become exactly its layers"),
    partial_update=extend_schema(summary="Change some of a schedule's fields (layers, if given, are replaced)"),
    destroy=extend_schema(summary="Delete a schedule, its layers and overrides"),
)
class ScheduleViewSet(ConfigViewSet):
    queryset = Schedule.objects.select_related("team").prefetch_related("layers__members__user").order_by("name", "pk")
    serializer_class = ScheduleSerializer
    filterset_class = ScheduleFilter
    scope, team_path, resource = "schedules", "team", "schedule"
    lookup_value_regex = r"[0-9]+"


# --- overrides ---------------------------------------------------------------------


class OverrideSerializer(ModelValidated):
    schedule = AdministeredPk(
        queryset=Schedule.objects.all(), help_text="Id of the schedule.",
        error_messages={"does_not_exist": "No schedule {pk_value} of the teams you administer."},
    )
    user = username_field(help_text="Username of who is on call instead.")

    class Meta:
        model = Override
        fields = ["id", "external_id", "schedule", "user", "start", "end", "note"]
        read_only_fields = ["id"]


class OverrideFilter(filters.FilterSet):
    ends_after = filters.IsoDateTimeFilter(field_name="end", lookup_expr="gt", help_text="Only those ending after this time.")
    user = filters.CharFilter(field_name="user__username", help_text="Username.")

    class Meta:
        model = Override
        fields = ["external_id", "schedule", "user", "ends_after"]


@extend_schema_view(
    list=extend_schema(summary="List your teams' schedule overrides, by start"),
    retrieve=extend_schema(summary="An override: who is on call instead, from when to when"),
    create=extend_schema(summary="Add an override: this person is on call on the schedule from start to end"),
    update=extend_schema(summary="Replace an override"),
    partial_update=extend_schema(summary="Change some of an override's fields"),
    destroy=extend_schema(summary="Delete an override"),
)
class OverrideViewSet(ConfigViewSet):
    queryset = Override.objects.select_related("schedule", "user").order_by("start", "pk")
    serializer_class = OverrideSerializer
    filterset_class = OverrideFilter
    scope, team_path, resource = "schedules", "schedule__team", "override"
    lookup_value_regex = r"[0-9]+"
