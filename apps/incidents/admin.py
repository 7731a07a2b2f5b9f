from django.contrib import admin

from .models import Alert, GroupingRule, Incident, MaintenanceWindow, Service


class GroupingRuleInline(admin.TabularInline):
    model = GroupingRule
    extra = 0


@admin.register(Service)
class ServiceAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "team", "auto_resolve_minutes", "similarity_threshold"]
    list_filter = ["team"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name", "slug"]
    filter_horizontal = ["depends_on"]
    inlines = [GroupingRuleInline]


@admin.register(Incident)
class IncidentAdmin(admin.ModelAdmin):
    """Read-only: state changes go through the portal, the API or Slack, so that
    each one is audited (apps/incidents/services.py)."""

    list_display = ["number", "title", "status", "severity", "service", "alert_count", "created_at"]
    list_filter = ["status", "severity", "service"]
    search_fields = ["title", "dedup_key"]
    exclude = ["embedding"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(Alert)
class AlertAdmin(admin.ModelAdmin):
    list_display = ["title", "status", "severity", "source", "incident", "dedup_reason", "received_at"]
    list_filter = ["source", "status", "severity", "dedup_reason"]
    search_fields = ["title", "dedup_key", "fingerprint"]
    raw_id_fields = ["incident"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(MaintenanceWindow)
class MaintenanceWindowAdmin(admin.ModelAdmin):
    list_display = ["reason", "service", "matchers", "starts_at", "ends_at", "created_by"]
    list_filter = ["service"]
    exclude = ["created_by"]

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
