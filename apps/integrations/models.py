from django.conf import settings
from django.db import models


class Integration(models.Model):
    """An inbound source of alerts: one sender format, one service, one secret token."""

    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GENERIC = "generic", "Generic JSON"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    service = models.ForeignKey("incidents.Service", on_delete=models.CASCADE, related_name="integrations")
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"


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
    external_id = models.CharField(max_length=255, blank=True, help_text="Slack ts, Twilio SID, Message-ID…")
    fallback_of = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="fallbacks"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [
            models.Index(
                fields=["next_attempt_at"], condition=models.Q(status="pending"), name="notification_due_idx"
            ),
        ]

    def __str__(self):
        return f"{self.channel} → {self.recipient or 'channel'} for {self.incident}"
