from django.core.exceptions import ValidationError
from django.db import models

from apps.accounts.sealed import SealedField

from . import templating
from .matchers import Matcher, MatcherError, parse_matchers


class Integration(models.Model):
    """An inbound source of alerts: one sender format, one secret token.  Its routes
    send each alert to a service by its labels; what no route takes goes to
    `service`, the default route."""

    class Kind(models.TextChoices):
        ALERTMANAGER = "alertmanager", "Prometheus Alertmanager"
        GRAFANA = "grafana", "Grafana alerting"
        PAGERDUTY = "pagerduty", "PagerDuty Events API v2"
        OPSGENIE = "opsgenie", "Opsgenie Alert API"
        GENERIC = "generic", "Generic JSON"
        HEARTBEAT = "heartbeat", "Heartbeat (dead man's switch)"

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    service = models.ForeignKey(
        "incidents.Service", on_delete=models.CASCADE, related_name="integrations",
        help_text="The default route: where alerts go that no route takes.",
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # Heartbeats only: an incident opens when no ping came for this long.
    heartbeat_minutes = models.PositiveIntegerField(
        null=True, blank=True, help_text="Heartbeat integrations: expect a ping at least this often (minutes)."
    )
    last_ping_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Optional, on top of the token: an HMAC-SHA256 signature of the body, as Grafana's
    # webhook sends it: hex(HMAC(secret, [timestamp ":"] body)) in `signature_header`.
    signing_secret = SealedField(blank=True, editable=False, help_text="Sealed (apps/accounts/sealed.py).")
    signature_header = models.CharField(max_length=100, default="X-Grafana-Alerting-Signature")
    signature_timestamp_header = models.CharField(
        max_length=100, blank=True, help_text="If the sender signs 'timestamp:body', the header holding the timestamp."
    )
    # Generic integrations only: Jinja templates mapping the sender's JSON onto our fields.
    templates = models.JSONField(
        default=dict,
        blank=True,
        help_text='Generic JSON only, e.g. {"title": "{{ payload.alert_title }}", "dedup_key": "{{ payload.id }}"}; '
        "fields: title, description, severity, dedup_key, status, source.",
    )
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    def __str__(self):
        return f"{self.name} ({self.get_kind_display()})"

    def clean(self):
        errors = {}
        if (self.kind == self.Kind.HEARTBEAT) != bool(self.heartbeat_minutes):
            errors["heartbeat_minutes"] = "Set it for heartbeat integrations, and only for them."
        if self.templates and self.kind != self.Kind.GENERIC:
            errors["templates"] = "Only generic integrations use templates."
        elif problems := templating.check(self.templates):
            errors["templates"] = "; ".join(f"{field} {problem}" for field, problem in problems.items())
        if errors:
            raise ValidationError(errors)


class Route(models.Model):
    """Where an integration's alerts go by their labels (Alertmanager's route tree,
    Grafana OnCall's routes, PagerDuty's routing rules): the first active route, by
    position, whose matchers all hold sends an alert to its service
    (apps/integrations/routes.py).  A route whose service is gone or disabled sends
    its alerts to the default route instead, and says so on each alert: routing never
    turns an alert away."""

    integration = models.ForeignKey(Integration, on_delete=models.CASCADE, related_name="routes")
    position = models.PositiveIntegerField(default=0, help_text="Routes are tried in this order; the first that matches wins.")
    name = models.CharField(max_length=100, blank=True)
    matchers = models.JSONField(
        help_text='Alertmanager label matchers, all of which must hold, e.g. ["service=\\"checkout\\"", '
        '"env=~\\"prod|staging\\""]; regular expressions are RE2, anchored.',
    )
    service = models.ForeignKey(
        "incidents.Service", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        help_text="Empty (deleted) or disabled: its alerts go to the integration's default service.",
    )
    is_active = models.BooleanField(default=True)
    # Given by a config-as-code tool or an importer, to find the object again (issue 17).
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        ordering = ["position", "pk"]

    def __str__(self):
        return self.name or ", ".join(map(str, self.compiled()))

    def compiled(self) -> list[Matcher]:
        return parse_matchers(self.matchers)

    def clean(self):
        try:
            parsed = self.compiled()
        except MatcherError as exc:
            raise ValidationError({"matchers": str(exc)}) from None
        if not parsed:
            raise ValidationError({"matchers": "Give at least one matcher: alerts no route takes already go to the default service."})
