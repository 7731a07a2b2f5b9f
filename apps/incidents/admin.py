from django.contrib import admin

from apps.accounts.team_admin import TeamScoped, TeamScopedInline
from incident_manager.readonly_admin import ReadOnlyModelAdmin

from .models import Alert, ClassificationRule, GroupingRule, Incident, MaintenanceWindow, Service


class GroupingRuleInline(TeamScopedInline, admin.TabularInline):
    model = GroupingRule
    extra = 0


@admin.register(Service)
class ServiceAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "team"

    list_display = ["name", "slug", "team", "is_active", "auto_resolve_minutes", "similarity_threshold"]
    list_filter = ["team"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    filter_horizontal = ["depends_on"]
    inlines = [GroupingRuleInline]


@admin.register(Incident)
class IncidentAdmin(ReadOnlyModelAdmin):
    """Read-only: state changes go through the portal, the API or Slack, so that
    each one is audited (apps/incidents/services.py)."""

    list_display = ["number", "title", "status", "severity", "service", "alert_count", "created_at"]
    list_filter = ["status", "severity", "service"]
    search_fields = ["title", "dedup_key"]
    exclude = ["embedding"]


@admin.register(Alert)
class AlertAdmin(ReadOnlyModelAdmin):
    list_display = ["title", "status", "severity", "source", "incident", "dedup_reason", "received_at"]
    list_filter = ["source", "status", "severity", "dedup_reason"]
    search_fields = ["title", "dedup_key", "fingerprint"]
    raw_id_fields = ["incident"]


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "service__team"

    list_display = ["reason", "service", "matchers", "starts_at", "ends_at", "created_by"]
    list_filter = ["service"]
    exclude = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(ClassificationRule)
class ClassificationRuleAdmin(admin.ModelAdmin):
    """Tried before the built-in rules on every new alert; a save takes effect within a second."""

    list_display = ["name", "enabled", "order", "pattern", "label_name", "label_value", "source", "category", "severity", "confidence"]
    list_editable = ["enabled", "order"]
    list_filter = ["enabled", "category", "severity"]
    search_fields = ["name", "pattern"]
    fieldsets = [
        (None, {"fields": ["name", "enabled", "order"]}),
        ("Matches (all given must hold)", {"fields": ["pattern", "label_name", "label_value", "source"]}),
        ("Sets (empty: the built-in rules decide)", {"fields": ["category", "severity", "environment", "model", "confidence"]}),
    ]
