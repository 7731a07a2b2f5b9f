import secrets
import uuid

from django.conf import settings
from django.urls import reverse

from apps.accounts.tokens import digest, new_token

from .models import Integration


def set_new_token(integration: Integration) -> str:
    """Give the integration a fresh secret token and return it; only its digest is kept.

    PagerDuty routing keys are 32 hex characters and Opsgenie API keys are UUIDs:
    senders that check the shape of the key they are given accept ours.
    """
    if integration.kind == Integration.Kind.PAGERDUTY:
        token = secrets.token_hex(16)
    elif integration.kind == Integration.Kind.OPSGENIE:
        token = str(uuid.uuid4())
    else:
        token, _ = new_token("im")
    integration.token_hash = digest(token)
    integration.token_prefix = token[:8]
    return token


def create_integration(*, name: str, kind: str, service, heartbeat_minutes: int | None = None) -> tuple[Integration, str]:
    """Create an integration and return it with its secret token: shown this once."""
    if kind == Integration.Kind.HEARTBEAT and not heartbeat_minutes:
        raise ValueError("A heartbeat integration needs heartbeat_minutes.")
    integration = Integration(name=name, kind=kind, service=service, heartbeat_minutes=heartbeat_minutes)
    token = set_new_token(integration)
    integration.save()
    return integration, token


def how_to_send(token: str, kind: str) -> str:
    """Where and how a sender of this kind delivers its alerts (the secret included)."""
    if kind == Integration.Kind.PAGERDUTY:
        return f"POST {settings.SITE_URL}{reverse('pagerduty-enqueue')} with routing_key {token}"
    if kind == Integration.Kind.OPSGENIE:
        base = settings.SITE_URL + reverse("opsgenie-create").removesuffix("/v2/alerts")
        return f"Opsgenie API URL {base} with header 'Authorization: GenieKey {token}'"
    if kind == Integration.Kind.HEARTBEAT:
        return f"GET or POST {ingestion_url(token, kind)}"
    return ingestion_url(token, kind)


def ingestion_url(token: str, kind: str) -> str:
    """The URL a sender posts to; it holds the secret token."""
    if kind == Integration.Kind.HEARTBEAT:
        return settings.SITE_URL + reverse("heartbeat", kwargs={"token": token})
    return settings.SITE_URL + reverse("ingest", kwargs={"token": token, "kind": kind})
