from django import forms
from django.contrib import admin, messages

from apps.accounts.sealed import seal

from .models import Integration
from .services import how_to_send, set_new_token


class IntegrationForm(forms.ModelForm):
    new_signing_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput,
        help_text="Require an HMAC-SHA256 body signature made with this secret (write-only; "
        "leave empty to keep the current one). Type a single space to stop requiring one.",
        strip=False,
    )

    class Meta:
        model = Integration
        fields = "__all__"


@admin.register(Integration)
class IntegrationAdmin(admin.ModelAdmin):
    form = IntegrationForm
    list_display = ["name", "kind", "service", "token_prefix", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    fields = [
        "name", "kind", "service", "is_active", "heartbeat_minutes", "templates",
        "new_signing_secret", "signature_header", "signature_timestamp_header", "token_prefix", "last_ping_at",
    ]
    readonly_fields = ["token_prefix", "last_ping_at"]

    def save_model(self, request, obj, form, change):
        secret = form.cleaned_data.get("new_signing_secret")
        if secret:
            obj.signing_secret = "" if not secret.strip() else seal(secret)
        if not change:
            # The token exists only in this response; the database keeps its digest.
            token = set_new_token(obj)
            super().save_model(request, obj, form, change)
            messages.warning(
                request,
                f"{obj.name}, shown this once: {how_to_send(token, obj.kind)}",
            )
            return
        super().save_model(request, obj, form, change)
