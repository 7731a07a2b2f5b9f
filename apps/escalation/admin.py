from django.contrib import admin

from apps.accounts.team_admin import TeamScoped, TeamScopedInline
from incident_manager.readonly_admin import ReadOnlyModelAdmin

from .models import EscalationPolicy, EscalationRule, EscalationState


class EscalationRuleInline(TeamScopedInline, admin.StackedInline):
    model = EscalationRule
    extra = 0
    fields = [("position", "delay_minutes", "channels"), ("users", "schedules", "teams")]


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "service__team"

    list_display = ["name", "service", "severities", "repeat", "digest_only", "business_hours_only"]
    list_filter = ["service"]
    inlines = [EscalationRuleInline]
    fieldsets = [
        (None, {"fields": ["name", "service", "severities", "repeat", "repeat_delay_minutes", "ack_timeout_minutes", "digest_only"]}),
        ("Business hours", {"fields": ["business_hours_only", "time_zone", "business_start", "business_end", "business_weekdays"]}),
    ]


@admin.register(EscalationState)
class EscalationStateAdmin(ReadOnlyModelAdmin):
    """Read-only: the engine and the incident lifecycle move these."""

    list_display = ["incident", "policy", "status", "level", "cycle", "next_at"]
    list_filter = ["status"]
    raw_id_fields = ["incident"]
