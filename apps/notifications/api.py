"""The configuration API of what goes out (issue 17), on apps/accounts/config_api.py.

- /api/v1/users/<user_pk>/contact-methods/ and …/notification-rules/ (users:read,
  users:write): a user's, as the user's own record (apps/accounts/api.py): read by the
  members of their teams, changed by an admin of every team they are in.
- /api/v1/webhooks/ (notifications:read, notifications:write): a service's or a team's
  outbound webhooks; its viewers read, its admins change.  Creating one answers its
  signing secret, that once.  The URL must reach a public address (egress.py), unless
  WEBHOOK_ALLOWED_NETWORKS lets its range through.
- /api/v1/slack-channels/ (notifications scopes): which Slack channel a service's
  incidents are announced in.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions

from apps.accounts import roles
from apps.accounts.api import UserAccess, crud_schema, may_change_user
from apps.accounts.config_api import ConfigViewSet, access

from .models import ContactMethod, NotificationRule, SlackChannelLink, WebhookEndpoint
from .serializers import (
    ContactMethodSerializer,
    NotificationRuleSerializer,
    SlackChannelLinkSerializer,
    WebhookSerializer,
)

USER_PK = OpenApiParameter("user_pk", int, OpenApiParameter.PATH, description="The user's id.")


class OwnedAccess(UserAccess):
    def user_of(self, obj):
        return obj.user


class OfUser(ConfigViewSet):
    """A user's rows: the user (of the principal's teams, or a 404) is in the URL."""

    scope, team_path = "users", "user__membership__team"
    lookup_value_regex = r"[0-9]+"

    def get_permissions(self):
        return [OwnedAccess()]

    def owner(self):
        if "_owner" not in self.__dict__:
            users = roles.scoped(get_user_model().objects.all(), self.request.user, roles.VIEWER, team="membership__team")
            self._owner = get_object_or_404(users.distinct(), pk=self.kwargs["user_pk"])
        return self._owner

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, typing the document's ids
            return self.queryset.none()
        return self.queryset.filter(user=self.owner())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "user_pk" in self.kwargs:
            context["owner"] = self.owner()
        return context

    def perform_create(self, serializer):
        if not may_change_user(self.request.user, self.owner()):
            raise exceptions.PermissionDenied(OwnedAccess.refused)
        super().perform_create(serializer)


class ContactMethodFilter(filters.FilterSet):
    class Meta:
        model = ContactMethod
        fields = ["external_id", "kind", "verified"]


@extend_schema(parameters=[USER_PK])
@crud_schema("contact method", "a user's contact methods")
class ContactMethodViewSet(OfUser):
    queryset = ContactMethod.objects.order_by("kind", "created_at", "id")
    serializer_class = ContactMethodSerializer
    filterset_class = ContactMethodFilter
    resource = "contact_method"


class NotificationRuleFilter(filters.FilterSet):
    class Meta:
        model = NotificationRule
        fields = ["external_id", "kind"]


@extend_schema(parameters=[USER_PK])
@crud_schema("notification rule", "a user's notification rules, by delay")
class NotificationRuleViewSet(OfUser):
    queryset = NotificationRule.objects.order_by("delay_minutes", "id")
    serializer_class = NotificationRuleSerializer
    filterset_class = NotificationRuleFilter
    resource = "notification_rule"


# Webhooks: a service's, or a team's (the first that is set decides its team).


def webhook_team(webhook) -> int | None:
    return webhook.service.team_id if webhook.service_id else webhook.team_id


class WebhookAccess(access("notifications", "team")):
    def team_of(self, webhook):
        return webhook_team(webhook)


class WebhookFilter(filters.FilterSet):
    service = filters.CharFilter(field_name="service__slug", help_text="Slug of the service.")
    team = filters.CharFilter(field_name="team__slug", help_text="Slug of the team (team-wide webhooks).")

    class Meta:
        model = WebhookEndpoint
        fields = ["external_id", "service", "team", "is_active"]


@crud_schema("webhook", "the outbound webhooks of your teams and their services",
             create="Create a webhook: the answer holds its signing secret, this once")
class WebhookViewSet(ConfigViewSet):
    queryset = WebhookEndpoint.objects.select_related("service", "team").order_by("name", "id")
    serializer_class = WebhookSerializer
    filterset_class = WebhookFilter
    scope, team_path, resource = "notifications", "team", "webhook"
    lookup_value_regex = r"[0-9]+"

    def get_permissions(self):
        return [WebhookAccess()]

    def get_queryset(self):
        teams = roles.team_ids(self.request.user, roles.VIEWER)
        if teams is roles.EVERY_TEAM:
            return self.queryset.all()
        return self.queryset.filter(Q(service__team__in=teams) | Q(service__isnull=True, team__in=teams))

    def _write(self, serializer, verb: str):
        with transaction.atomic():
            webhook = serializer.save()
            if not roles.can_configure(self.request.user, webhook_team(webhook)):
                field = "service" if webhook.service_id else "team"
                raise exceptions.ValidationError({field: ["You do not administer the team this would belong to."]})
            self._audit(verb, webhook, url=webhook.url, fields=sorted(serializer.validated_data))
        return webhook


class SlackChannelFilter(filters.FilterSet):
    service = filters.CharFilter(field_name="service__slug", help_text="Slug of the service.")

    class Meta:
        model = SlackChannelLink
        fields = ["external_id", "service", "channel_id", "is_active"]


@crud_schema("Slack channel link", "the Slack channels your teams' services announce incidents in",
             create="Announce a service's incidents in a Slack channel")
class SlackChannelLinkViewSet(ConfigViewSet):
    queryset = SlackChannelLink.objects.select_related("service", "workspace").order_by("service__slug", "channel_id")
    serializer_class = SlackChannelLinkSerializer
    filterset_class = SlackChannelFilter
    scope, team_path, resource = "notifications", "service__team", "slack_channel"
    lookup_value_regex = r"[0-9]+"
