"""Serializers of the configuration API's contact methods, notification rules, webhooks
and Slack channel links (api.py)."""

import re

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email
from rest_framework import serializers

from apps.accounts.config_api import ModelValidated
from apps.accounts.models import Team
from apps.accounts.serializers import ExternalId
from apps.incidents.models import Service, Severity

from .channels.webhook import new_secret
from .models import ContactMethod, NotificationRule, SlackChannelLink, SlackWorkspace, WebhookEndpoint

E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
SLACK_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")


class ContactMethodSerializer(ModelValidated):
    external_id = ExternalId()

    class Meta:
        model = ContactMethod
        fields = ["id", "kind", "address", "verified", "external_id", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators = []  # (kind, address) is checked in validate(), naming the address

    def validate(self, data):
        kind = data.get("kind", getattr(self.instance, "kind", None))
        address = data.get("address", getattr(self.instance, "address", None))
        if "kind" not in data and "address" not in data:
            return data  # (a change of `verified` alone)
        if kind == ContactMethod.Kind.EMAIL:
            try:
                validate_email(address)
            except DjangoValidationError:
                raise serializers.ValidationError({"address": ["Enter a valid e-mail address."]}) from None
        elif kind in (ContactMethod.Kind.SMS, ContactMethod.Kind.VOICE) and not E164.match(address or ""):
            raise serializers.ValidationError({"address": ["Enter an E.164 phone number, such as +4915112345678."]})
        elif kind == ContactMethod.Kind.SLACK and not SLACK_USER.match(address or ""):
            raise serializers.ValidationError({"address": ["Enter a Slack user id, such as U024BE7LH."]})
        taken = ContactMethod.objects.filter(kind=kind, address=address).exclude(pk=getattr(self.instance, "pk", None))
        if taken.exists():
            raise serializers.ValidationError({"address": [f"This {kind} address is already someone's contact method."]})
        return data

    def create(self, validated_data):
        return self._saved(ContactMethod(user=self.context["owner"]), validated_data)


class NotificationRuleSerializer(ModelValidated):
    severities = serializers.ListField(
        child=serializers.ChoiceField(choices=Severity.choices), required=False,
        help_text="The incident severities the rule is for; empty: any severity.",
    )
    external_id = ExternalId()

    class Meta:
        model = NotificationRule
        fields = ["id", "severities", "kind", "delay_minutes", "external_id"]
        read_only_fields = ["id"]

    def create(self, validated_data):
        return self._saved(NotificationRule(user=self.context["owner"]), validated_data)


class WebhookSerializer(ModelValidated):
    service = serializers.SlugRelatedField(
        slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False,
        help_text="Slug of the service whose incidents are sent; or give `team`.",
    )
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), allow_null=True, required=False,
        help_text="Slug of the team whose services' incidents are sent; or give `service`.",
    )
    url = serializers.URLField(max_length=1000, help_text="Where incidents are POSTed. Public addresses only, "
                               "unless WEBHOOK_ALLOWED_NETWORKS lets the range through.")
    secret = serializers.SerializerMethodField(
        help_text="The signing secret (Standard Webhooks), in the answer to the creation only; null afterwards.")
    external_id = ExternalId()

    class Meta:
        model = WebhookEndpoint
        fields = ["id", "name", "url", "service", "team", "is_active", "external_id", "secret", "created_at"]
        read_only_fields = ["id", "created_at"]

    def get_secret(self, webhook) -> str | None:
        return getattr(webhook, "new_secret", None)

    def validate(self, data):
        service = data.get("service", getattr(self.instance, "service", None))
        team = data.get("team", getattr(self.instance, "team", None))
        if service is None and team is None:  # as the admin form says
            raise serializers.ValidationError({"service": ["Choose a service or a team."]})
        return data

    def create(self, validated_data):
        webhook = WebhookEndpoint()
        webhook.new_secret = webhook.secret = new_secret()
        return self._saved(webhook, validated_data)


class SlackChannelLinkSerializer(ModelValidated):
    service = serializers.SlugRelatedField(
        slug_field="slug", queryset=Service.objects.all(), help_text="Slug of the service whose incidents are announced.",
    )
    workspace = serializers.SlugRelatedField(
        slug_field="team_id", queryset=SlackWorkspace.objects.all(),
        help_text="Slack's team id (T…) of an installed workspace.",
    )
    external_id = ExternalId()

    class Meta:
        model = SlackChannelLink
        fields = ["id", "service", "workspace", "channel_id", "is_active", "external_id"]
        read_only_fields = ["id"]
        validators = []  # (service, workspace, channel_id) is checked in validate(), naming the channel

    def validate(self, data):
        key = {name: data.get(name, getattr(self.instance, name, None)) for name in ("service", "workspace", "channel_id")}
        if SlackChannelLink.objects.filter(**key).exclude(pk=getattr(self.instance, "pk", None)).exists():
            raise serializers.ValidationError({"channel_id": ["This service is already linked to this channel."]})
        return data
