import orjson
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from apps.accounts.sealed import seal
from apps.accounts.team_admin import TeamScoped, TeamScopedInline

from . import routes
from .models import Integration, Route
from .parsers import PayloadError
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


class RouteInline(TeamScopedInline, admin.TabularInline):
    model = Route
    extra = 0
    fields = ["position", "name", "matchers", "service", "is_active"]
    autocomplete_fields = ["service"]


class PreviewForm(forms.Form):
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 16, "cols": 100}),
                              help_text="A payload as the sender posts it (JSON).")

    def clean_payload(self):
        try:
            return orjson.loads(self.cleaned_data["payload"])
        except orjson.JSONDecodeError as exc:
            raise forms.ValidationError(f"Not valid JSON: {exc}") from None


@admin.register(Integration)
class IntegrationAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "service__team"

    form = IntegrationForm
    inlines = [RouteInline]
    list_display = ["name", "kind", "service", "token_prefix", "is_active", "created_at"]
    list_filter = ["kind", "is_active"]
    fields = [
        "name", "kind", "service", "is_active", "heartbeat_minutes", "templates",
        "new_signing_secret", "signature_header", "signature_timestamp_header", "token_prefix", "last_ping_at",
    ]
    readonly_fields = ["token_prefix", "last_ping_at", "test_a_payload"]

    def get_fields(self, request, obj=None):
        return [*self.fields, "test_a_payload"] if obj else self.fields

    @admin.display(description="Routes")
    def test_a_payload(self, obj):
        url = reverse("admin:integrations_integration_preview", args=[obj.pk])
        return format_html('<a href="{}">Test a payload</a>: see which route and service each of its alerts goes to.', url)

    def get_urls(self):
        preview = self.admin_site.admin_view(self.preview_view)
        return [path("<int:pk>/preview/", preview, name="integrations_integration_preview"), *super().get_urls()]

    def preview_view(self, request, pk):
        """Where a pasted payload's alerts would go, by the routes as saved (nothing is stored)."""
        integration = get_object_or_404(Integration, pk=pk)
        if not self.has_view_permission(request, integration):
            raise PermissionDenied
        form = PreviewForm(request.POST or None)
        previews = None
        if request.method == "POST" and form.is_valid():
            try:
                previews = routes.preview(integration, form.cleaned_data["payload"])
            except PayloadError as exc:
                form.add_error("payload", f"{exc.field}: {exc.message}")
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": integration,
                   "title": f"Test a payload: {integration.name}", "form": form, "previews": previews}
        return TemplateResponse(request, "admin/integrations/integration/preview.html", context)

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
