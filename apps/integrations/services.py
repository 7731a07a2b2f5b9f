from django.conf import settings
from django.urls import reverse

from apps.accounts.tokens import new_token

from .models import Integration


def create_integration(*, name: str, kind: str, service) -> tuple[Integration, str]:
    """Create an integration and return it with its ingestion URL.

    The URL holds the secret token; it is shown this once and only its digest is kept.
    """
    token, token_hash = new_token("im")
    integration = Integration.objects.create(
        name=name, kind=kind, service=service, token_hash=token_hash, token_prefix=token[:10]
    )
    return integration, ingestion_url(token, kind)


def ingestion_url(token: str, kind: str) -> str:
    return settings.SITE_URL + reverse("ingest", kwargs={"token": token, "kind": kind})
