import hashlib
import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Func, Q, Value
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
    # Noise reduction (apps/incidents/settle.py).
    similarity_threshold = models.FloatField(
        null=True,
        blank=True,
        help_text="Merge a new incident into an open one of this service when their texts are at least this "
        "similar (cosine, 0-1). Empty: the site default (SIMILARITY_THRESHOLD, 0.85). 1 or more: never.",
    )
    depends_on = models.ManyToManyField(
        "self",
        symmetrical=False,
        blank=True,
        related_name="dependents",
        help_text="Services this one needs. An incident here while one of them has an open incident "
        "becomes its child, and does not page while the parent is open.",
    )
    correlation_minutes = models.PositiveIntegerField(
        default=30, help_text="How recent a dependency's open incident must be to count as the cause."
    )
    identifying_labels = models.JSONField(
        null=True, blank=True,
        help_text="Labels on which two alerts must not disagree to share an incident by grouping or similarity "
        "(apps/incidents/identity.py), e.g. [\"service\", \"cluster\"]. Empty: service, cluster, env, environment, "
        "namespace, region, tenant and the grouping rules' labels other than alertname.",
    )
    is_active = models.BooleanField(
        default=True, help_text="Disabled: integration routes naming it send their alerts to their default service.",
    )
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    def __str__(self):
        return self.name

    def clean(self):
        labels = self.identifying_labels
        if labels is not None and not (
            isinstance(labels, list) and all(isinstance(name, str) and name.strip() for name in labels)
        ):
            raise ValidationError({"identifying_labels": 'Write a JSON list of label names, e.g. ["service", "cluster"].'})


class Category:
    """What an incident is about, as classification (classification.py) decides."""

    LATENCY = "latency"
    ERROR_RATE = "error_rate"
    QUALITY = "quality"
    COST = "cost"
    INFRASTRUCTURE = "infrastructure"
    AVAILABILITY = "availability"
    SECURITY = "security"
    OTHER = "other"

    choices = [
        (LATENCY, "Latency"),
        (ERROR_RATE, "Error rate"),
        (QUALITY, "Quality (accuracy, hallucination, toxicity)"),
        (COST, "Cost (token spend, quota)"),
        (INFRASTRUCTURE, "Infrastructure (GPU memory, temperature, OOM)"),
        (AVAILABILITY, "Availability"),
        (SECURITY, "Security"),
        (OTHER, "Other"),
    ]
    values = [value for value, _ in choices]


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

    class SeveritySource(models.TextChoices):
        """Who decided the severity that pages: the best one known wins (a person's
        over the sender's over the classifier's; services.change_severity)."""

        SENDER = "sender"
        RULES = "rules", "rule-based classifier"
        LLM = "llm", "LLM classifier"
        PERSON = "person"

    # Human id (#42), from its own sequence so that retries don't reuse numbers.
    number = models.BigIntegerField(
        unique=True, editable=False, db_default=Func(Value("incidents_incident_number_seq"), function="nextval")
    )
    title = models.CharField(max_length=500)
    description = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.TRIGGERED)
    severity = models.CharField(max_length=16, choices=Severity.choices, default=Severity.MEDIUM)
    severity_source = models.CharField(
        max_length=8, choices=SeveritySource.choices, default=SeveritySource.SENDER, db_default=SeveritySource.SENDER
    )
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
    # True from ingest until the worker has compared the new incident with the open
    # ones (similarity, dependencies): no page goes out before that (apps/incidents/settle.py).
    settling = models.BooleanField(db_default=False, default=False)
    merged_into = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="merged_incidents"
    )
    # Set when a dependency's open incident explains this one: it does not page while
    # the parent is open (inhibition).
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children")
    # Classification (apps/incidents/classification.py; by "rules" until the LLM lands).
    category = models.CharField(max_length=32, blank=True)
    llm_model = models.CharField("affected model", max_length=100, blank=True)
    environment = models.CharField(max_length=50, blank=True)
    classified_severity = models.CharField(max_length=16, choices=Severity.choices, blank=True)
    classification_confidence = models.FloatField(null=True, blank=True)
    classification_rationale = models.CharField(max_length=300, blank=True)
    classified_by = models.CharField(max_length=16, blank=True)
    # When the LLM was asked for its second opinion (triage.py): the sweep asks for the
    # incidents whose task was never queued (Redis away) or lost.
    llm_asked_at = models.DateTimeField(null=True, blank=True)
    # Database defaults: the ingest statement inserts incidents without the ORM.
    llm_input_tokens = models.PositiveIntegerField(db_default=0)
    llm_output_tokens = models.PositiveIntegerField(db_default=0)
    llm_cost_usd = models.DecimalField(max_digits=10, decimal_places=6, db_default=0)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "-created_at"]),
            models.Index(fields=["service", "dedup_key"]),
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


class DedupReason(models.TextChoices):
    """Why an alert is in its incident."""

    OPENED = "opened", "opened the incident"
    DEDUP_KEY = "dedup_key", "same dedup key or fingerprint"
    GROUPING = "grouping", "grouping rule"
    SIMILARITY = "similarity", "similar text"
    MERGED = "merged", "merged by a responder"
    SPLIT = "split", "split out by a responder"


class Alert(models.Model):
    class Status(models.TextChoices):
        FIRING = "firing"
        ACKNOWLEDGED = "acknowledged"  # a sender's acknowledge (PagerDuty, Opsgenie)
        RESOLVED = "resolved"

    # Null only for a "resolved" alert that matched no incident: it is still kept.
    # (No index of its own: the (incident, -received_at) index below serves it.)
    incident = models.ForeignKey(
        Incident, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    # No database constraint: ingest stores the alerts of an integration it has just
    # looked up, and checking each of a storm's alerts against it again cost a fifth
    # of ingest's time in PostgreSQL (bench/ingest.py).  SET_NULL is applied by Django.
    integration = models.ForeignKey(
        "integrations.Integration", null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts",
        db_constraint=False,
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
    dedup_reason = models.CharField(max_length=16, choices=DedupReason.choices, default=DedupReason.OPENED)
    dedup_detail = models.CharField(max_length=300, blank=True)
    # Which of its integration's routes sent it to its service (apps/integrations/routes.py);
    # empty when the integration has no routes.
    route = models.CharField(max_length=300, blank=True, default="", db_default="")
    starts_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        ordering = ["-received_at"]
        indexes = [models.Index(fields=["incident", "-received_at"])]

    def __str__(self):
        return f"{self.source}: {self.title}"


def category_choices():
    # Migrations refer to this function by name.
    return Category.choices


class ClassificationRule(models.Model):
    """An admin's own classification rule, tried before the built-in ones
    (apps/incidents/classification_rules.py); the first enabled match by order wins.
    Its matchers must all hold; what it leaves empty the built-in rules decide."""

    name = models.CharField(max_length=100)
    enabled = models.BooleanField(default=True)
    order = models.PositiveIntegerField(default=0, help_text="Lower first.")
    pattern = models.CharField(
        max_length=300, blank=True,
        help_text="Regular expression, case-insensitive, searched in the alert name, title and description.",
    )
    label_name = models.CharField(max_length=100, blank=True, help_text="With the value: the alert carries this label.")
    label_value = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=100, blank=True, help_text="Only alerts of this source (alertmanager, grafana…).")
    category = models.CharField(max_length=32, blank=True, choices=category_choices)
    severity = models.CharField(max_length=16, blank=True, choices=Severity.choices)
    environment = models.CharField(max_length=50, blank=True)
    model = models.CharField("affected model", max_length=100, blank=True)
    confidence = models.FloatField(default=0.9, validators=[MinValueValidator(0), MaxValueValidator(1)])
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["order", "pk"]

    def __str__(self):
        return self.name

    def clean(self):
        errors = {}
        if self.pattern:
            try:
                re.compile(self.pattern)
            except re.error as exc:
                errors["pattern"] = f"Not a valid regular expression: {exc}."
        if bool(self.label_name) != bool(self.label_value):
            errors["label_value" if self.label_name else "label_name"] = "Give both the label's name and its value."
        if not (self.pattern or self.label_name or self.source) and "pattern" not in errors:
            errors["pattern"] = "Give at least one matcher: a pattern, a label and its value, or a source."
        if not (self.category or self.severity or self.environment or self.model):
            errors["category"] = "Set at least one of category, severity, environment or affected model."
        if errors:
            raise ValidationError(errors)


class MaintenanceWindow(models.Model):
    """While it lasts, matching alerts are recorded and fold into incidents as usual,
    but nothing pages: no escalation starts and no announcement goes out."""

    service = models.ForeignKey(
        Service, null=True, blank=True, on_delete=models.CASCADE, related_name="maintenance_windows",
        help_text="Empty: every service.",
    )
    matchers = models.JSONField(
        default=dict, blank=True, help_text='Labels the alert must all carry, e.g. {"env": "staging"}; empty: any alert.'
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    reason = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["-starts_at"]
        constraints = [
            models.CheckConstraint(condition=Q(ends_at__gt=F("starts_at")), name="maintenance_ends_after_it_starts"),
        ]

    def __str__(self):
        return f"{self.reason} ({self.starts_at:%Y-%m-%d %H:%M} to {self.ends_at:%Y-%m-%d %H:%M})"

    def clean(self):
        if not isinstance(self.matchers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.matchers.items()
        ):
            raise ValidationError({"matchers": 'Write them as a JSON object of label: value, e.g. {"env": "staging"}.'})

    def matches(self, labels: dict[str, str]) -> bool:
        return all(labels.get(name) == value for name, value in self.matchers.items())


class IncidentKey(models.Model):
    """A key that routes alerts to an incident: an alert's dedup key (or fingerprint),
    or a grouping rule's key.  Ingest looks keys up among open incidents, under an
    advisory lock per key, so each key has at most one open incident; merge and
    split move keys between incidents."""

    class Kind(models.TextChoices):
        ALERT = "alert"
        GROUP = "group"
        # Split out of this incident: the key never joins it again, by grouping or
        # similarity, while it is open.
        APART = "apart"

    # Neither foreign key has an index of its own: the (service, key) index and the
    # (incident, key) constraint serve them, and the planner no longer picks the
    # service's index for a lookup by key.
    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="+", db_index=False)
    key = models.CharField(max_length=300)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.ALERT)
    incident = models.ForeignKey(Incident, on_delete=models.CASCADE, related_name="keys", db_index=False)
    # An alert key goes quiet when its sender resolves it; a grouped incident resolves
    # when none of its alert keys fires any more.
    firing = models.BooleanField(default=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["incident", "key"], name="one_key_per_incident")]
        indexes = [models.Index(fields=["service", "key"])]

    def __str__(self):
        return f"{self.key} -> {self.incident_id}"


class GroupingRule(models.Model):
    """Alerts of a service that share the values of these labels join one incident,
    as long as it has had an alert within the window (PagerDuty's content-based
    grouping; Alertmanager's group_by)."""

    service = models.ForeignKey(Service, on_delete=models.CASCADE, related_name="grouping_rules")
    name = models.CharField(max_length=100)
    group_by = models.JSONField(help_text='Label names, e.g. ["alertname", "cluster"].')
    window_minutes = models.PositiveIntegerField(default=30)
    position = models.PositiveIntegerField(default=0, help_text="Rules are tried in this order; the first that applies wins.")
    is_active = models.BooleanField(default=True)
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self):
        return f"{self.name}: {', '.join(self.group_by)} within {self.window_minutes} min"

    def clean(self):
        if not (
            isinstance(self.group_by, list)
            and self.group_by
            and all(isinstance(name, str) and name.strip() for name in self.group_by)
        ):
            raise ValidationError({"group_by": 'Write a JSON list of label names, e.g. ["alertname", "cluster"].'})

    def key_for(self, labels: dict[str, str]) -> str | None:
        """The group this alert belongs to, or None when it lacks one of the labels."""
        if not all(name in labels for name in self.group_by):
            return None
        values = "\x1f".join(f"{name}={labels[name]}" for name in self.group_by)
        return f"group:{self.pk}:{hashlib.sha256(values.encode()).hexdigest()}"
