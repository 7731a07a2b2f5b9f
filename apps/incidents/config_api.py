"""The configuration API of services (/api/v1/services/…, their grouping rules and
dependencies within) and maintenance windows (/api/v1/maintenance-windows/…), on
apps.accounts.config_api's ConfigViewSet: the `services` scope, viewers read and team
admins write, admin-form validation, audited writes, `?external_id=`.

Also `Teamless`, for resources whose objects may belong to no team (a maintenance
window or runbook for every service): every signed-in principal reads those, and only
organisation admins write them.
"""

import django_filters
from django.core.exceptions import ValidationError as ModelValidationError
from django.db import transaction
from django.db.models import Prefetch, ProtectedError, Q, RestrictedError
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, serializers

from apps.accounts import roles
from apps.accounts.config_api import ConfigViewSet, ModelValidated, access, team_of
from apps.accounts.models import Team

from .api import Conflict
from .models import GroupingRule, MaintenanceWindow, Service
from .serializers import ErrorSerializer


def summaries(plural: str, singular: str, **extra) -> extend_schema_view:
    """The OpenAPI summaries of a configuration resource's operations."""
    return extend_schema_view(**{
        "list": extend_schema(summary=f"List {plural} (`?external_id=` finds one by a config tool's id)"),
        "create": extend_schema(summary=f"Create a {singular}"),
        "retrieve": extend_schema(summary=f"Read a {singular}"),
        "update": extend_schema(summary=f"Replace a {singular}"),
        "partial_update": extend_schema(summary=f"Change some fields of a {singular}"),
        "destroy": extend_schema(summary=f"Delete a {singular}"),
        **extra,
    })


def principal_of(request):
    """The person behind a request: the user, or an API key's creator (None for an operator's key)."""
    key = getattr(request.user, "key", None)
    if key is not None:
        return key.created_by
    return request.user if roles.can_sign_in(request.user) else None


def is_org_admin(principal) -> bool:
    return roles.can_sign_in(principal) and roles.team_ids(principal, roles.ADMIN) is roles.EVERY_TEAM


class Teamless:
    """Mixin before ConfigViewSet: objects whose team is empty (no service) are every
    signed-in principal's to read (with the read scope), and only organisation admins'
    (or an operator's key's) to create, change or delete."""

    teamless_refused = "Only organisation admins change objects that belong to no team."

    def get_queryset(self):
        queryset = self.queryset.all()
        teams = roles.team_ids(self.request.user, roles.VIEWER)
        if teams is roles.EVERY_TEAM:
            return queryset
        return queryset.filter(Q(**{f"{self.team_path}__in": teams}) | Q(**{f"{self.team_path}__isnull": True}))

    def get_permissions(self):
        base = access(self.scope, self.team_path)
        refused = self.teamless_refused

        def has_object_permission(perm, request, view, obj):
            if team_of(obj, self.team_path) is None:
                if request.method in ("GET", "HEAD", "OPTIONS"):
                    return roles.can_sign_in(request.user)
                perm.message = refused
                return is_org_admin(request.user)
            return base.has_object_permission(perm, request, view, obj)

        return [type(base.__name__, (base,), {"has_object_permission": has_object_permission})()]

    def _write(self, serializer, verb: str):
        with transaction.atomic():
            obj = super()._write(serializer, verb)
            if team_of(obj, self.team_path) is None and not is_org_admin(self.request.user):
                raise exceptions.ValidationError({self.team_path.split("__")[0]: [self.teamless_refused]})
        return obj


class VisibleSlugs(serializers.SlugRelatedField):
    """A reference by slug to an object of a team the principal may read (others are
    answered as unknown)."""

    def __init__(self, team_path: str, **kwargs):
        self.team_path = team_path
        super().__init__(**kwargs)

    def get_queryset(self):
        queryset = super().get_queryset()
        request = self.context.get("request")
        return roles.scoped(queryset, request.user if request else None, roles.VIEWER, team=self.team_path)


def indexed_errors(detail):
    """A nested list's errors as {index: errors} for the items that have some, so that
    the error body's `field` names the item (grouping_rules.1.group_by)."""
    if isinstance(detail, list) and any(isinstance(item, dict) for item in detail):
        return {str(i): item for i, item in enumerate(detail) if item}
    return detail


class GroupingRuleSerializer(serializers.ModelSerializer):
    group_by = serializers.JSONField(help_text='Label names, e.g. ["alertname", "cluster"].')

    class Meta:
        model = GroupingRule
        fields = ["id", "external_id", "name", "group_by", "window_minutes", "position", "is_active"]
        read_only_fields = ["id"]
        # Checked when the service's rules are written (they replace its old ones).
        extra_kwargs = {"external_id": {"validators": []}}


class ServiceSerializer(ModelValidated):
    team = serializers.SlugRelatedField(slug_field="slug", queryset=Team.objects.all(), help_text="The team's slug.")
    depends_on = VisibleSlugs(
        "team", slug_field="slug", queryset=Service.objects.all(), many=True, required=False,
        help_text="Slugs of the services this one needs: an incident here while one of them has an open incident "
        "becomes its child, and does not page while the parent is open.",
    )
    grouping_rules = GroupingRuleSerializer(
        many=True, required=False,
        help_text="Tried in order of position; written, they replace the service's rules. Omitted: kept.",
    )
    identifying_labels = serializers.JSONField(
        required=False, allow_null=True,
        help_text='Labels two alerts must not disagree on to share an incident, e.g. ["service", "cluster"]; null: the default.',
    )

    class Meta:
        model = Service
        fields = [
            "id", "external_id", "name", "slug", "team", "description", "is_active", "auto_resolve_minutes",
            "similarity_threshold", "identifying_labels", "correlation_minutes", "depends_on", "grouping_rules",
        ]
        read_only_fields = ["id"]

    def to_internal_value(self, data):
        try:
            return super().to_internal_value(data)
        except serializers.ValidationError as exc:
            if isinstance(exc.detail, dict) and "grouping_rules" in exc.detail:
                exc.detail["grouping_rules"] = indexed_errors(exc.detail["grouping_rules"])
            raise

    def validate_similarity_threshold(self, value):
        if value is not None and value < 0:
            raise serializers.ValidationError("Give a similarity from 0 to 1 (1 or more: never merge).")
        return value

    def validate(self, attrs):
        if self.instance is not None and self.instance in attrs.get("depends_on", ()):
            raise serializers.ValidationError({"depends_on": ["A service cannot depend on itself."]})
        return attrs

    def create(self, validated_data):
        rules = validated_data.pop("grouping_rules", None)
        return self._with_rules(super().create(validated_data), rules)

    def update(self, instance, validated_data):
        rules = validated_data.pop("grouping_rules", None)
        return self._with_rules(super().update(instance, validated_data), rules)

    def _with_rules(self, service, rules):
        if rules is not None:
            service.grouping_rules.all().delete()
            for i, data in enumerate(rules):
                rule = GroupingRule(service=service, **data)
                try:
                    rule.full_clean()
                except ModelValidationError as exc:
                    raise serializers.ValidationError({"grouping_rules": {str(i): exc.message_dict}}) from None
                rule.save()
            # The response shows the rules as written, not as prefetched before.
            getattr(service, "_prefetched_objects_cache", {}).pop("grouping_rules", None)
        return service


class ServiceFilter(django_filters.FilterSet):
    team = django_filters.CharFilter(field_name="team__slug", help_text="Team slug.")

    class Meta:
        model = Service
        fields = ["external_id", "slug", "team", "is_active"]


@summaries(
    "services, with their grouping rules and dependencies", "service",
    destroy=extend_schema(
        summary="Delete a service, with its integrations, grouping rules and maintenance windows",
        responses={204: None, 409: OpenApiResponse(ErrorSerializer, description="The service still has incidents.")},
    ),
)
class ServiceViewSet(ConfigViewSet):
    scope, team_path, resource = "services", "team", "service"
    serializer_class = ServiceSerializer
    filterset_class = ServiceFilter
    queryset = Service.objects.select_related("team").prefetch_related(
        Prefetch("depends_on", queryset=Service.objects.only("id", "slug")), "grouping_rules"
    ).order_by("name", "pk")

    def perform_destroy(self, instance):
        try:
            super().perform_destroy(instance)
        except (ProtectedError, RestrictedError):
            raise Conflict(f"Service {instance.slug} still has incidents: disable it (is_active false) instead.") from None


class MaintenanceWindowSerializer(ModelValidated):
    service = VisibleSlugs(
        "team", slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False,
        help_text="The service's slug; null: every service (organisation admins only).",
    )
    matchers = serializers.JSONField(
        required=False, help_text='Labels the alert must all carry, e.g. {"env": "staging"}; empty: any alert.'
    )
    created_by = serializers.SlugRelatedField(
        slug_field="username", read_only=True, allow_null=True, help_text="Who created it; null: an operator's key or a deleted user."
    )

    class Meta:
        model = MaintenanceWindow
        fields = ["id", "external_id", "service", "matchers", "starts_at", "ends_at", "reason", "created_by"]
        read_only_fields = ["id", "created_by"]

    def validate(self, attrs):
        starts = attrs.get("starts_at", getattr(self.instance, "starts_at", None))
        ends = attrs.get("ends_at", getattr(self.instance, "ends_at", None))
        if starts and ends and ends <= starts:
            raise serializers.ValidationError({"ends_at": ["A maintenance window ends after it starts."]})
        return attrs

    def create(self, validated_data):
        request = self.context.get("request")
        return super().create({**validated_data, "created_by": principal_of(request) if request else None})


class MaintenanceWindowFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")

    class Meta:
        model = MaintenanceWindow
        fields = ["external_id", "service"]


@summaries("maintenance windows (while one lasts, matching alerts page no one)", "maintenance window")
class MaintenanceWindowViewSet(Teamless, ConfigViewSet):
    scope, team_path, resource = "services", "service__team", "maintenance_window"
    serializer_class = MaintenanceWindowSerializer
    filterset_class = MaintenanceWindowFilter
    queryset = MaintenanceWindow.objects.select_related("service", "created_by").order_by("-starts_at", "pk")
