from django.contrib import admin

from .models import ApiKey, Membership, Team


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
    readonly_fields = ["name", "prefix", "scopes", "created_by", "created_at"]
    fields = ["name", "prefix", "scopes", "created_by", "created_at", "revoked_at"]

    def has_add_permission(self, request):
        return False
