from django.conf import settings
from django.urls import reverse

from apps.accounts.tokens import new_token

from .models import Integration


def set_new_token(integration: Integration) -> str:
    """Give the integration a fresh secret token and return it; only its digest is kept."""
    token, integration.token_hash = new_token("im")
    integration.token_prefix = token[:10]
    return token


def create_integration(*, name: str, kind: str, service) -> tuple[Integration, str]:
    """Create an integration and return it with its ingestion URL, which holds the
    secret token: shown this once."""
    integration = Integration(name=name, kind=kind, service=service)
    token = set_new_token(integration)
    integration.save()
    return integration, ingestion_url(token, kind)


def ingestion_url(token: str, kind: str) -> str:
    return settings.SITE_URL + reverse("ingest", kwargs={"token": token, "kind": kind})
