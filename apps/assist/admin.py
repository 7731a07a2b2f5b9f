from django.contrib import admin

from apps.accounts.team_admin import TeamScoped
from incident_manager.readonly_admin import ReadOnlyModelAdmin
from django.db import transaction

from . import tasks
from .models import IncidentSummary, Postmortem, Runbook


@admin.register(Runbook)
class RunbookAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "service__team"

    list_display = ["title", "service", "tags", "updated_at", "embedded"]
    list_filter = ["service"]
    search_fields = ["title", "body"]

    @admin.display(boolean=True, description="matched by meaning")
    def embedded(self, runbook):
        return runbook.embedding is not None

    def save_model(self, request, obj, form, change):
        # The embedding is computed in a worker (web processes never load the model):
        # the old one no longer says what the runbook holds, and is cleared now.
        obj.embedding = None
        super().save_model(request, obj, form, change)
        transaction.on_commit(lambda: tasks.embed_runbook.delay(obj.pk), robust=True)


@admin.register(IncidentSummary)
class IncidentSummaryAdmin(ReadOnlyModelAdmin):
    list_display = ["incident", "alert_count", "generated_at"]
    raw_id_fields = ["incident"]


@admin.register(Postmortem)
class PostmortemAdmin(ReadOnlyModelAdmin):
    """Read-only: edits go through the portal's page, which audits them."""

    list_display = ["incident", "status", "drafted_by", "updated_by", "updated_at"]
    list_filter = ["status", "drafted_by"]
    raw_id_fields = ["incident"]
