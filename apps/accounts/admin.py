from django.contrib import admin

from apps.audit.services import Actor

from .models import ApiKey, GroupMapping, Membership, Team
from .services import revoke_api_key
from .team_admin import TeamScoped, TeamScopedInline


class MembershipInline(TeamScopedInline, admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(TeamScoped, admin.ModelAdmin):
    team_path = ""

    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(TeamScoped, admin.ModelAdmin):
    """Keys are created with `manage.py createapikey` (shown once); here they are
    listed and revoked."""

    team_path = "team"

    list_display = ["name", "prefix", "scopes", "team", "created_by", "created_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "scopes", "team", "created_by", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys (audited)")
    def revoke(self, request, queryset):
        for key in queryset:
            revoke_api_key(key, actor=Actor.of(request.user))
        self.message_user(request, f"Revoked {queryset.count()} key(s).")


@admin.register(GroupMapping)
class GroupMappingAdmin(admin.ModelAdmin):
    """Which team and role an identity provider's group gives (README "Single sign-on").
    The teams a provider's rows name are synced at each sign-in through it."""

    list_display = ["provider", "group", "team", "role"]
    list_filter = ["provider", "role"]
    search_fields = ["provider", "group", "team__name"]
    autocomplete_fields = ["team"]
