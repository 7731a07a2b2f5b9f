"""What goes out: the outbox (Notification), where it goes (Slack workspaces and
channel links, webhook endpoints), the state of the messages sent (Slack messages),
and how each person wants to be reached (contact methods, notification rules).

These models were the integrations app's until issue 13; they keep their tables
(db_table) so that the move cost no data (docs/adr/0009).
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.db import models

from apps.accounts.sealed import SealedField, seal, unseal

from . import egress


class Notification(models.Model):
    """The outbox: one message to deliver, written in the transaction that decided it.

    Escalation (and anything else that pages) only ever writes these rows; the
    delivery workers in this app send them and keep their state here.  The
    idempotency key makes "write it twice" harmless: the second insert conflicts.
    """

    class Channel(models.TextChoices):
        SLACK = "slack"
        EMAIL = "email"
        SMS = "sms"
        VOICE = "voice"
        WEBHOOK = "webhook"

    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up: final error, or attempts exhausted
        SUPPRESSED = "suppressed"  # not sent on purpose (maintenance, inhibition, incident closed)

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="notifications")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="notifications"
    )
    # Where it goes when it is not a person: a Slack channel, a webhook endpoint…
    target = models.CharField(max_length=255, blank=True)
    channel = models.CharField(max_length=16, choices=Channel.choices)
    idempotency_key = models.CharField(max_length=255, unique=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    reason = models.JSONField(default=dict, blank=True, help_text="Why this was sent: rule, level, schedule, override.")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    # Set, and committed, just before a provider is called; cleared when the attempt
    # ends.  Still set on a row nobody holds: the worker stopped mid-send, and whether
    # the message went out is in doubt (outbox.deliver checks before sending again).
    sending_since = models.DateTimeField(null=True, blank=True)
    possible_duplicate = models.BooleanField(
        default=False, help_text="Sent again after an attempt that may have reached the recipient already."
    )
    external_id = models.CharField(max_length=255, blank=True, help_text="Slack ts, Twilio SID, Message-ID…")
    # What the provider reported after taking the message (Twilio's status callback).
    external_status = models.CharField(
        max_length=32, blank=True, help_text="The provider's final report: delivered, undelivered, failed, no-answer, busy…"
    )
    fallback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallbacks"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integrations_notification"
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status="pending"), name="notification_due_idx"
            ),
        ]

    def __str__(self):
        return f"{self.channel} → {self.recipient or 'channel'} for {self.incident}"


class SlackWorkspace(models.Model):
    """A Slack workspace with our app installed.  The bot token and signing secret are
    stored sealed (sealed.py) and never shown again once entered."""

    team_id = models.CharField(max_length=32, unique=True, help_text="Slack's team id, T…")
    name = models.CharField(max_length=100)
    bot_token_sealed = SealedField(editable=False)
    signing_secret_sealed = SealedField(editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integrations_slackworkspace"

    def __str__(self):
        return f"{self.name} ({self.team_id})"

    @property
    def bot_token(self) -> str:
        return unseal(self.bot_token_sealed)

    @bot_token.setter
    def bot_token(self, value: str) -> None:
        self.bot_token_sealed = seal(value)

    @property
    def signing_secret(self) -> str:
        return unseal(self.signing_secret_sealed)

    @signing_secret.setter
    def signing_secret(self, value: str) -> None:
        self.signing_secret_sealed = seal(value)


class SlackChannelLink(models.Model):
    """A service's incidents are announced in this Slack channel."""

    service = models.ForeignKey("incidents.Service", on_delete=models.CASCADE, related_name="slack_channels")
    workspace = models.ForeignKey(SlackWorkspace, on_delete=models.CASCADE, related_name="channels")
    channel_id = models.CharField(max_length=32, help_text="C…")
    is_active = models.BooleanField(default=True)
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        db_table = "integrations_slackchannellink"
        constraints = [
            models.UniqueConstraint(fields=["service", "workspace", "channel_id"], name="one_link_per_channel")
        ]

    def __str__(self):
        return f"{self.service} → {self.channel_id}"


class SlackMessage(models.Model):
    """The one message an incident has in a Slack channel: later changes update it
    (chat.update) and follow-up alerts go into its thread."""

    incident = models.ForeignKey("incidents.Incident", on_delete=models.CASCADE, related_name="slack_messages")
    workspace = models.ForeignKey(SlackWorkspace, on_delete=models.CASCADE, related_name="+")
    channel_id = models.CharField(max_length=32)
    ts = models.CharField(max_length=32, blank=True)
    alert_count_posted = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "integrations_slackmessage"
        constraints = [
            models.UniqueConstraint(fields=["incident", "channel_id"], name="one_slack_message_per_incident_channel")
        ]

    def __str__(self):
        return f"{self.channel_id}/{self.ts}"


class ContactMethod(models.Model):
    """How to reach a person: an e-mail address, a phone number, a Slack user id."""

    class Kind(models.TextChoices):
        SLACK = "slack"
        EMAIL = "email"
        SMS = "sms"
        VOICE = "voice"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="contact_methods")
    kind = models.CharField(max_length=16, choices=Kind.choices)
    address = models.CharField(max_length=255, help_text="E-mail, E.164 phone number (+4915…), or Slack user id (U…)")
    verified = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        db_table = "integrations_contactmethod"
        constraints = [models.UniqueConstraint(fields=["kind", "address"], name="one_owner_per_contact")]

    def __str__(self):
        return f"{self.user}: {self.kind} {self.address}"


class NotificationRule(models.Model):
    """'critical: SMS at once, call after 2 minutes; others: Slack' is three rules."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notification_rules")
    severities = ArrayField(
        models.CharField(max_length=16), blank=True, default=list, help_text="Empty: any severity."
    )
    kind = models.CharField(max_length=16, choices=ContactMethod.Kind.choices)
    delay_minutes = models.PositiveIntegerField(default=0)
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        db_table = "integrations_notificationrule"
        ordering = ["user", "delay_minutes", "id"]

    def __str__(self):
        return f"{self.user}: {self.kind} after {self.delay_minutes} min for {','.join(self.severities) or 'any'}"


class WebhookEndpoint(models.Model):
    """An outbound webhook: every incident of the service (or of any service of the
    team) is POSTed here as JSON, signed the Standard Webhooks way."""

    name = models.CharField(max_length=100)
    url = models.URLField(max_length=1000)
    service = models.ForeignKey(
        "incidents.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks"
    )
    team = models.ForeignKey("accounts.Team", null=True, blank=True, on_delete=models.CASCADE, related_name="webhooks")
    secret_sealed = SealedField(editable=False)
    is_active = models.BooleanField(default=True)
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "integrations_webhookendpoint"

    def __str__(self):
        return self.name

    def clean(self):
        if not self.url:
            return  # the field's own error says so
        # Again at each send (channels/webhook.py), where the name may resolve elsewhere by then.
        try:
            egress.resolve(self.url)
        except egress.Refused as exc:
            raise ValidationError({"url": f"This URL {exc}."}) from None

    @property
    def secret(self) -> str:
        return unseal(self.secret_sealed)

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_sealed = seal(value)
