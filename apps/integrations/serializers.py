from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from apps.accounts.config_api import ModelValidated
from apps.accounts.sealed import seal
from apps.incidents.config_api import VisibleSlugs
from apps.incidents.models import Service

from .matchers import MatcherError, parse_matchers
from .models import Integration, Route
from .services import how_to_send, ingestion_url, set_new_token


class RouteSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(
        slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False,
        help_text="Slug of the service this route's alerts go to.",
    )
    matchers = serializers.JSONField(
        help_text='Alertmanager label matchers, all of which must hold: a list such as ["service=\\"checkout\\"", '
        '"env=~\\"prod|staging\\""], or one string "{service=\\"checkout\\", env!=\\"dev\\"}". Regexes are RE2, anchored.',
    )

    class Meta:
        model = Route
        fields = ["id", "external_id", "position", "name", "matchers", "service", "is_active"]
        read_only_fields = ["id"]

    def validate_matchers(self, value):
        # As Route.clean() judges them (the admin form's check), here with the field's name.
        try:
            parsed = parse_matchers(value)
        except MatcherError as exc:
            raise serializers.ValidationError(str(exc)) from None
        if not parsed:
            raise serializers.ValidationError("Give at least one matcher: alerts no route takes already go to the default service.")
        return value

    def validate_service(self, service):
        if service is None:
            raise serializers.ValidationError("A route needs a service.")
        return service


class PreviewSerializer(serializers.Serializer):
    title = serializers.CharField()
    labels = serializers.DictField(child=serializers.CharField())
    service = serializers.CharField(help_text="Name of the service the alert would go to.")
    route = serializers.CharField(help_text="Which route would take it.")


class IntegrationSerializer(ModelValidated):
    """An integration as read and written; its token is never shown after its creation."""

    service = VisibleSlugs(
        "team", slug_field="slug", queryset=Service.objects.all(),
        help_text="Slug of the default service: where alerts go that no route takes.",
    )
    templates = serializers.JSONField(
        required=False,
        help_text='Generic JSON only, e.g. {"title": "{{ payload.alert_title }}", "dedup_key": "{{ payload.id }}"}.',
    )
    signing_secret = serializers.CharField(
        write_only=True, required=False, allow_blank=True, trim_whitespace=False, max_length=500,
        help_text="Require an HMAC-SHA256 body signature made with this secret (write-only). Empty: stop requiring one.",
    )
    has_signing_secret = serializers.SerializerMethodField(help_text="Whether senders must sign their bodies.")

    class Meta:
        model = Integration
        fields = [
            "id", "external_id", "name", "kind", "service", "is_active", "heartbeat_minutes", "templates",
            "signing_secret", "has_signing_secret", "signature_header", "signature_timestamp_header",
            "token_prefix", "created_at", "last_ping_at",
        ]
        read_only_fields = ["id", "token_prefix", "created_at", "last_ping_at"]

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_has_signing_secret(self, integration) -> bool:
        return bool(integration.signing_secret)

    def validate_kind(self, kind):
        if self.instance is not None and kind != self.instance.kind:
            raise serializers.ValidationError("An integration's kind cannot change (its senders' URL holds it): create another.")
        return kind

    def _sealed(self, validated_data) -> dict:
        if "signing_secret" in validated_data:
            secret = validated_data.pop("signing_secret")
            validated_data["signing_secret"] = seal(secret) if secret.strip() else ""
            return {"issued_signing_secret": secret if secret.strip() else None}
        return {}

    def create(self, validated_data):
        shown = self._sealed(validated_data)
        integration = Integration(kind=validated_data.get("kind"))
        token = set_new_token(integration)  # only its digest is stored
        integration = self._saved(integration, validated_data)
        integration.issued_token = token
        integration.issued_signing_secret = shown.get("issued_signing_secret")
        return integration

    def update(self, instance, validated_data):
        self._sealed(validated_data)
        return super().update(instance, validated_data)


class IntegrationCreatedSerializer(IntegrationSerializer):
    """The answer to a creation: the only time the token (and signing secret) are shown."""

    token = serializers.CharField(source="issued_token", read_only=True, help_text="The secret token, shown this once.")
    ingestion_url = serializers.SerializerMethodField(help_text="Where senders post their alerts; it holds the token.")
    how_to_send = serializers.SerializerMethodField(help_text="How a sender of this kind delivers its alerts.")
    signing_secret = serializers.CharField(
        source="issued_signing_secret", read_only=True, allow_null=True, help_text="As given, shown this once; null: none."
    )

    class Meta(IntegrationSerializer.Meta):
        fields = [*IntegrationSerializer.Meta.fields, "token", "ingestion_url", "how_to_send"]

    @extend_schema_field(OpenApiTypes.URI)
    def get_ingestion_url(self, integration) -> str:
        return ingestion_url(integration.issued_token, integration.kind)

    @extend_schema_field(OpenApiTypes.STR)
    def get_how_to_send(self, integration) -> str:
        return how_to_send(integration.issued_token, integration.kind)
