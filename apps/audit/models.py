from django.conf import settings
from django.db import models


class AuditEntry(models.Model):
    """One thing that happened, kept for good.

    The table is append-only: a trigger (migration 0002) makes PostgreSQL refuse
    UPDATE and DELETE.  References are kept without foreign-key constraints so that
    deleting a user or archiving an incident never has to touch this table.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor_label = models.CharField(max_length=200, help_text="Who acted: a username, an integration, 'system'.")
    verb = models.CharField(max_length=64)
    incident = models.ForeignKey(
        "incidents.Incident",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="audit_entries",
    )
    data = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["at", "id"]
        verbose_name_plural = "audit entries"
        indexes = [models.Index(fields=["incident", "at"])]

    def __str__(self):
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.actor_label} {self.verb}"
