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
