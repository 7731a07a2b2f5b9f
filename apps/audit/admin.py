from django.contrib import admin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_label", "verb", "incident_id"]
    list_filter = ["verb"]
    search_fields = ["actor_label", "verb"]

    # Append-only: the database refuses changes anyway; don't offer them.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
