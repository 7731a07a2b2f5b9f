from django.contrib import admin

from incident_manager.readonly_admin import ReadOnlyModelAdmin

from .models import AuditEntry


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyModelAdmin):
    list_display = ["at", "actor_label", "verb", "incident_id"]
    list_filter = ["verb"]
    search_fields = ["actor_label", "verb"]

    # Append-only: the database refuses changes anyway; don't offer them.
    deletable = False
