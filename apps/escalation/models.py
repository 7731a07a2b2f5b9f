"""Escalation policies and the per-incident escalation timer: data only.

The engine (engine.py) moves EscalationState along; services.py starts, stops and
restarts it from the incident lifecycle.
"""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.validators import MaxValueValidator
from django.db import models
from django.db.models import Q

from apps.incidents.models import Severity
from apps.notifications.models import Notification
from apps.schedules.models import EXTERNAL_ID, Weekday, validate_time_zone

# The longest wait a policy may hold (30 days): past it, planned times leave what
# datetime can hold, and no one means it.
MAX_MINUTES = 30 * 24 * 60


class EscalationPolicy(models.Model):
    """What happens when an incident of `service` opens.

    A service may have several policies, one per set of severities (the variant
    whose `severities` contain the incident's severity wins; one with no
    severities is the catch-all).
    """

    name = models.CharField(max_length=100)
    external_id = models.CharField(**EXTERNAL_ID)
    service = models.ForeignKey("incidents.Service", on_delete=models.CASCADE, related_name="escalation_policies")
    severities = ArrayField(
        models.CharField(max_length=16, choices=Severity.choices),
        blank=True,
        default=list,
        help_text="Severities this variant applies to; empty: every severity without a variant of its own.",
    )
    repeat = models.PositiveSmallIntegerField(default=0, help_text="Run the whole policy again up to this many times.")
    repeat_delay_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(MAX_MINUTES)], help_text="Wait before a repeat starts; empty: the last rule's delay."
    )
    ack_timeout_minutes = models.PositiveIntegerField(
        null=True, blank=True, validators=[MaxValueValidator(MAX_MINUTES)], help_text="An acknowledged incident escalates again after this long."
    )
    digest_only = models.BooleanField(
        default=False, help_text="Send the first rule's targets one email digest entry; never escalate."
    )
    business_hours_only = models.BooleanField(default=False, help_text="Page only within the business hours below.")
    time_zone = models.CharField(max_length=64, default="UTC", validators=[validate_time_zone])
    business_start = models.TimeField(null=True, blank=True)
    business_end = models.TimeField(null=True, blank=True)
    business_weekdays = ArrayField(
        models.PositiveSmallIntegerField(choices=Weekday.choices), blank=True, default=list
    )

    class Meta:
        verbose_name_plural = "escalation policies"
        ordering = ["service", "name"]

    def __str__(self):
        return f"{self.service}: {self.name}"


class EscalationRule(models.Model):
    """One level: after `delay_minutes` since the previous level (or the start),
    notify the targets on these channels."""

    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="rules")
    external_id = models.CharField(**EXTERNAL_ID)
    position = models.PositiveSmallIntegerField(default=0)
    delay_minutes = models.PositiveIntegerField(default=0, validators=[MaxValueValidator(MAX_MINUTES)], help_text="After the previous level (or the start).")
    channels = ArrayField(
        models.CharField(max_length=16, choices=Notification.Channel.choices),
        blank=True,
        default=list,
        help_text="Empty: each person is reached by their own notification rules (channels and delays).",
    )
    users = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    schedules = models.ManyToManyField(
        "schedules.Schedule", blank=True, related_name="+", help_text="Whoever is on call at that moment."
    )
    teams = models.ManyToManyField("accounts.Team", blank=True, related_name="+", help_text="Every member.")

    class Meta:
        ordering = ["policy", "position", "id"]

    def __str__(self):
        return f"{self.policy} level {self.position}"


class EscalationState(models.Model):
    """The escalation timer of one incident: lives in the database, so a lost Celery
    message or a dead worker delays an escalation by one tick, never loses it."""

    class Status(models.TextChoices):
        ACTIVE = "active"  # next_at: when the next level fires
        ACKNOWLEDGED = "acknowledged"  # next_at: the ack timeout, if the policy has one
        STOPPED = "stopped"  # resolved
        EXHAUSTED = "exhausted"  # every level and repeat done

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="escalation")
    policy = models.ForeignKey(EscalationPolicy, on_delete=models.CASCADE, related_name="states")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    level = models.PositiveSmallIntegerField(default=0, help_text="Index of the next rule to fire.")
    # Bumped by every repeat and restart: part of the notifications' idempotency keys.
    cycle = models.PositiveIntegerField(default=0)
    repeats_done = models.PositiveSmallIntegerField(default=0)
    next_at = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(
                fields=["next_at"],
                condition=Q(status__in=["active", "acknowledged"], next_at__isnull=False),
                name="escalation_due_idx",
            )
        ]

    def __str__(self):
        return f"{self.incident}: {self.status} level {self.level} cycle {self.cycle}"
