from rest_framework import serializers

from apps.incidents.models import Service

from .matchers import MatcherError, parse_matchers
from .models import Route


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
        fields = ["id", "position", "name", "matchers", "service", "is_active"]
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
