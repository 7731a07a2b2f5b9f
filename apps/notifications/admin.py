"""Admin for what goes out: the outbox (read-only), Slack workspaces and channel
links, webhook endpoints, people's contact methods and notification rules."""

from django import forms
from django.contrib import admin, messages

from apps.accounts.team_admin import TeamScoped
from incident_manager.readonly_admin import ReadOnlyModelAdmin

from .channels.webhook import new_secret
from .models import ContactMethod, Notification, NotificationRule, SlackChannelLink, SlackWorkspace, WebhookEndpoint


@admin.register(Notification)
class NotificationAdmin(ReadOnlyModelAdmin):
    """Read-only: rows are written by escalation and delivery, never by hand."""

    list_display = ["id", "incident", "channel", "recipient", "target", "status", "attempts", "next_attempt_at",
                    "delivered_at", "external_id", "external_status", "short_error"]
    list_filter = ["status", "channel"]
    search_fields = ["idempotency_key", "external_id", "incident__number"]
    list_select_related = ["incident", "recipient"]

    def short_error(self, obj):
        return obj.last_error[:80]

    short_error.short_description = "last error"

    deletable = False


class SlackWorkspaceForm(forms.ModelForm):
    """The secrets are write-only: blank on edit keeps the stored ones."""

    bot_token = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False, help_text="xoxb-…")
    signing_secret = forms.CharField(widget=forms.PasswordInput(render_value=False), required=False)

    class Meta:
        model = SlackWorkspace
        fields = ["team_id", "name"]

    def clean(self):
        data = super().clean()
        if not self.instance.pk and not (data.get("bot_token") and data.get("signing_secret")):
            raise forms.ValidationError("A new workspace needs its bot token and signing secret.")
        return data

    def save(self, commit=True):
        if self.cleaned_data.get("bot_token"):
            self.instance.bot_token = self.cleaned_data["bot_token"]
        if self.cleaned_data.get("signing_secret"):
            self.instance.signing_secret = self.cleaned_data["signing_secret"]
        return super().save(commit)


@admin.register(SlackWorkspace)
class SlackWorkspaceAdmin(admin.ModelAdmin):
    form = SlackWorkspaceForm
    list_display = ["name", "team_id", "created_at"]


@admin.register(SlackChannelLink)
class SlackChannelLinkAdmin(TeamScoped, admin.ModelAdmin):
    team_path = "service__team"

    list_display = ["service", "workspace", "channel_id", "is_active"]


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=1000, assume_scheme="https")

    class Meta:
        model = WebhookEndpoint
        fields = ["name", "url", "service", "team", "is_active"]

    def clean(self):
        data = super().clean()
        if not data.get("service") and not data.get("team"):
            raise forms.ValidationError("Choose a service or a team.")
        return data


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(TeamScoped, admin.ModelAdmin):
    team_path = ("service__team", "team")

    form = WebhookEndpointForm
    list_display = ["name", "url", "service", "team", "is_active"]

    def save_model(self, request, obj, form, change):
        if not change:
            secret = new_secret()
            obj.secret = secret
            super().save_model(request, obj, form, change)
            messages.warning(request, f"Signing secret for {obj.name}, shown this once: {secret}")
            return
        super().save_model(request, obj, form, change)


@admin.register(ContactMethod)
class ContactMethodAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "address", "verified"]
    list_filter = ["kind", "verified"]
    search_fields = ["address", "user__username", "user__email"]


@admin.register(NotificationRule)
class NotificationRuleAdmin(admin.ModelAdmin):
    list_display = ["user", "severities", "kind", "delay_minutes"]
