from django.contrib import admin

from apps.audit.services import Actor

from .models import ApiKey, Membership, Team
from .services import revoke_api_key


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 1
    autocomplete_fields = ["user"]


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are created with `manage.py createapikey` (shown once); here they are
    listed and revoked."""

    list_display = ["name", "prefix", "scopes", "created_by", "created_at", "revoked_at"]
    readonly_fields = ["name", "prefix", "scopes", "created_by", "created_at", "revoked_at"]
    actions = ["revoke"]

    def has_add_permission(self, request):
        return False

    @admin.action(description="Revoke selected keys (audited)")
    def revoke(self, request, queryset):
        for key in queryset:
            revoke_api_key(key, actor=Actor.of(request.user))
        self.message_user(request, f"Revoked {queryset.count()} key(s).")
