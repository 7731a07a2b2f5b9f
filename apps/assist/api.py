"""The REST API for runbooks (/api/v1/runbooks/…), on apps.accounts.config_api: the
`runbooks` scope; a service's runbooks are its team's viewers' to read and its team
admins' to write; a runbook with no service is everyone's to read, and only
organisation admins write those (apps.incidents.config_api.Teamless)."""

import django_filters
from django.db import transaction
from rest_framework import serializers

from apps.accounts.config_api import ConfigViewSet, ModelValidated
from apps.incidents.config_api import Teamless, VisibleSlugs, summaries
from apps.incidents.models import Service

from . import tasks
from .models import Runbook


class RunbookSerializer(ModelValidated):
    service = VisibleSlugs(
        "team", slug_field="slug", queryset=Service.objects.all(), allow_null=True, required=False,
        help_text="The service's slug; null: every service's (organisation admins only).",
    )
    tags = serializers.ListField(child=serializers.CharField(max_length=50), required=False, help_text="e.g. [\"gpu\", \"oom\"].")
    body = serializers.CharField(help_text="Markdown.", trim_whitespace=False)

    class Meta:
        model = Runbook
        fields = ["id", "external_id", "title", "body", "tags", "service", "updated_at"]
        read_only_fields = ["id", "updated_at"]

    def _saved(self, instance, validated_data):
        # As admin saves it: the old embedding no longer says what it holds; a worker
        # computes the new one (web processes never load the model).
        runbook = super()._saved(instance, {**validated_data, "embedding": None})
        transaction.on_commit(lambda: tasks.embed_runbook.delay(runbook.pk), robust=True)
        return runbook


class RunbookFilter(django_filters.FilterSet):
    service = django_filters.CharFilter(field_name="service__slug", help_text="Service slug.")

    class Meta:
        model = Runbook
        fields = ["external_id", "service"]


@summaries("runbooks (a service's, and those of every service)", "runbook")
class RunbookViewSet(Teamless, ConfigViewSet):
    scope, team_path, resource = "runbooks", "service__team", "runbook"
    serializer_class = RunbookSerializer
    filterset_class = RunbookFilter
    queryset = Runbook.objects.select_related("service").defer("embedding").order_by("title", "pk")
