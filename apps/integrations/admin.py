from django.contrib import admin, messages

from .models import Integration
from .services import ingestion_url, set_new_token


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "service", "token_prefix", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    fields = ["name", "kind", "service", "is_active", "token_prefix"]
    readonly_fields = ["token_prefix"]

    def save_model(self, request, obj, form, change):
        if not change:
            # The token exists only in this response; the database keeps its digest.
            token = set_new_token(obj)
            super().save_model(request, obj, form, change)
            messages.warning(
                request,
                f"Ingestion URL for {obj.name}, shown this once: {ingestion_url(token, obj.kind)}",
            )
            return
        super().save_model(request, obj, form, change)
