from django.conf import settings
from django.db import models
from django.db.models import Func, Q, Value
from pgvector.django import HnswIndex, VectorField

# Size of the similarity embedding (apps/incidents/similarity.py fills it later).
EMBEDDING_DIMENSIONS = 384


class Service(models.Model):
    team = models.ForeignKey("accounts.Team", on_delete=models.PROTECT, related_name="services")
    name = models.CharField(max_length=100)
    slug = models.SlugField(unique=True)
    description = models.TextField(blank=True)
    auto_resolve_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text="Resolve an open incident when no alert has arrived for this many minutes.",
    )

    def __str__(self):
        return self.name


class Severity(models.TextChoices):
    CRITICAL = "critical"
    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"
    INFO = "info"


class Incident(models.Model):
    class Status(models.TextChoices):
        TRIGGERED = "triggered"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    # Human id (#42), from its own sequence so that retries don't reuse numbers.
    number = models.BigIntegerField(
        unique=True, editable=False, db_default=Func(Value("incidents_incident_number_seq"), function="nextval")
    )
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIGGERED)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    service = models.ForeignKey(Service, on_delete=models.PROTECT, related_name="incidents")
    dedup_key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    labels = models.JSONField(default=dict, blank=True)
    alert_count = models.PositiveIntegerField(default=0)
    first_alert_at = models.DateTimeField()
    last_alert_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    resolved_at = models.DateTimeField(null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="assigned_incidents"
    )
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # At most one open incident per key: concurrent ingests of the same alert
            # collide here instead of racing a check-then-insert.
            models.UniqueConstraint(
                fields=["service", "dedup_key"],
                condition=~Q(status="resolved"),
                name="one_open_incident_per_dedup_key",
            ),
        ]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            HnswIndex(
                name="incident_embedding_hnsw",
                fields=["embedding"],
                m=16,
                ef_construction=64,
                opclasses=["vector_cosine_ops"],
            ),
        ]

    def __str__(self):
        return f"#{self.number} {self.title}"

    @property
    def is_open(self):
        return self.status != self.Status.RESOLVED


class Alert(models.Model):
    class Status(models.TextChoices):
        FIRING = "firing"
        ACKNOWLEDGED = "acknowledged"  # a sender's acknowledge (PagerDuty, Opsgenie)
        RESOLVED = "resolved"

    # Null only for a "resolved" alert that matched no incident: it is still kept.
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    integration = models.ForeignKey(
        "integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts"
    )
    source = models.CharField(max_length=100)
    status = models.CharField(max_length=16, choices=Status.choices)
    title = models.CharField(max_length=500)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    dedup_key = models.CharField(max_length=255)
    fingerprint = models.CharField(max_length=64)
    group_key = models.CharField(max_length=500, blank=True)
    labels = models.JSONField(default=dict)
    payload = models.JSONField(help_text="The alert as the sender sent it.")
    deduplicated = models.BooleanField(default=False)
    starts_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["incident", "-received_at"])]

    def __str__(self):
        return f"{self.source}: {self.title}"
