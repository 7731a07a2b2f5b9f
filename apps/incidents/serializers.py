from django.contrib.auth import get_user_model
from rest_framework import serializers

from apps.accounts import roles
from apps.audit.models import AuditEntry

from .models import Alert, Category, Incident, Severity
from .services import NOTE_MAX_LENGTH


def _username():
    return serializers.SlugRelatedField(slug_field="username", read_only=True, allow_null=True, help_text="Username.")


class IncidentSerializer(serializers.ModelSerializer):
    service = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="Service slug.")
    acknowledged_by = _username()
    resolved_by = _username()
    assignee = _username()
    url = serializers.HyperlinkedIdentityField(view_name="api:incident-detail")
    severity_source = serializers.CharField(read_only=True, help_text="Who decided the severity: sender, rules, llm or person.")
    category = serializers.CharField(read_only=True, help_text="What it is about: " + ", ".join(Category.values) + ".")
    classified_severity = serializers.CharField(read_only=True, help_text="The classifier's severity (advice when the sender or a person set one).")
    confidence = serializers.FloatField(source="classification_confidence", read_only=True, allow_null=True)
    rationale = serializers.CharField(source="classification_rationale", read_only=True)
    classified_by = serializers.CharField(read_only=True, help_text="rules or llm.")
    model = serializers.CharField(source="llm_model", read_only=True, help_text="The affected LLM, if one is named.")
    environment = serializers.CharField(read_only=True)

    class Meta:
        model = Incident
        fields = [
            "id", "number", "title", "status", "severity", "severity_source", "service", "alert_count",
            "first_alert_at", "last_alert_at", "acknowledged_at", "acknowledged_by",
            "resolved_at", "resolved_by", "assignee",
            "category", "classified_severity", "confidence", "rationale", "classified_by", "model", "environment",
            "url",
        ]
        read_only_fields = fields


class AlertSerializer(serializers.ModelSerializer):
    class Meta:
        model = Alert
        fields = [
            "id", "status", "title", "severity", "source", "dedup_key", "fingerprint",
            "deduplicated", "dedup_reason", "dedup_detail", "route", "received_at", "payload",
        ]
        read_only_fields = fields


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = serializers.CharField(source="actor_label", read_only=True, help_text="A username, apikey:NAME, integration:NAME or system.")

    class Meta:
        model = AuditEntry
        fields = ["at", "verb", "actor", "data"]
        read_only_fields = fields


class IncidentDetailSerializer(IncidentSerializer):
    # Filled by IncidentViewSet's prefetches (latest alerts first, timeline oldest first).
    alerts = AlertSerializer(source="latest_alerts", many=True, read_only=True, help_text="The latest 100 alerts.")
    timeline = TimelineEntrySerializer(many=True, read_only=True)

    class Meta(IncidentSerializer.Meta):
        fields = [
            *IncidentSerializer.Meta.fields, "description", "labels", "merged_into", "parent", "alerts", "timeline",
        ]
        read_only_fields = fields


# Request bodies of the actions.  CharField refuses NUL characters, which jsonb cannot store.


class ResolveSerializer(serializers.Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=1000)


class NoteSerializer(serializers.Serializer):
    # Blank passes here so that services.add_note stays the one judge of an empty note.
    text = serializers.CharField(allow_blank=True, max_length=NOTE_MAX_LENGTH)


class SeveritySerializer(serializers.Serializer):
    severity = serializers.ChoiceField(choices=Severity.choices)


class ReassignSerializer(serializers.Serializer):
    assignee = serializers.CharField(max_length=150, help_text="Username of the new assignee.")

    def validate_assignee(self, username):
        try:
            return get_user_model().objects.get(username=username, is_active=True)
        except get_user_model().DoesNotExist:
            raise serializers.ValidationError(f"No active user named {username!r}.") from None


class MergeSerializer(serializers.Serializer):
    into = serializers.PrimaryKeyRelatedField(
        queryset=Incident.objects.all(), help_text="Id of the open incident that takes this one's alerts."
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if request := self.context.get("request"):  # another team's incident is no such incident
            self.fields["into"].queryset = roles.scoped(Incident.objects.all(), request.user)


class SplitSerializer(serializers.Serializer):
    alert = serializers.PrimaryKeyRelatedField(
        queryset=Alert.objects.all(), help_text="Id of an alert of this incident; alerts of its key move with it."
    )


class ErrorSerializer(serializers.Serializer):
    """The body of every error response of the API."""

    error = serializers.CharField()
    field = serializers.CharField(required=False, help_text="The request field or query parameter at fault.")
