"""Responder assistance: data only (summaries.py, similar.py, postmortems.py do the work)."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from pgvector.django import HnswIndex, VectorField

from apps.incidents.models import EMBEDDING_DIMENSIONS


class Runbook(models.Model):
    """What to do about a kind of incident, in Markdown; matched to incidents by meaning."""

    title = models.CharField(max_length=200)
    body = models.TextField(help_text="Markdown.")
    tags = ArrayField(models.CharField(max_length=50), blank=True, default=list, help_text="Comma-separated, e.g. gpu,oom.")
    service = models.ForeignKey(
        "incidents.Service", null=True, blank=True, on_delete=models.CASCADE, related_name="runbooks",
        help_text="Empty: any service.",
    )
    # Filled by a worker after each save (tasks.embed_runbook); null until then.
    embedding = VectorField(dimensions=EMBEDDING_DIMENSIONS, null=True, blank=True, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["title"]
        indexes = [
            HnswIndex(
                name="runbook_embedding_hnsw", fields=["embedding"], m=16, ef_construction=64, opclasses=["vector_cosine_ops"]
            ),
        ]

    def __str__(self):
        return self.title


class IncidentSummary(models.Model):
    """The LLM's short summary of an incident and its latest alerts."""

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="summary")
    text = models.TextField()
    alert_count = models.PositiveIntegerField(help_text="The incident's alerts when it was written.")
    generated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "incident summaries"

    def __str__(self):
        return f"Summary of {self.incident}"


class Postmortem(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        FINAL = "final"

    class Author(models.TextChoices):
        LLM = "llm", "drafted by the LLM"
        TEMPLATE = "template", "template draft from the timeline"

    SECTIONS = ["summary", "timeline", "impact", "contributing_factors", "action_items"]

    incident = models.OneToOneField("incidents.Incident", on_delete=models.CASCADE, related_name="postmortem")
    summary = models.TextField(blank=True)
    timeline = models.TextField(blank=True)
    impact = models.TextField(blank=True)
    contributing_factors = models.TextField(blank=True)
    action_items = models.TextField(blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    drafted_by = models.CharField(max_length=8, choices=Author.choices)
    updated_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self):
        return f"Postmortem of {self.incident}"
