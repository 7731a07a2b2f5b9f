from apps.accounts.tokens import digest

from .models import Integration


def active_integration(token: str, kind: str) -> Integration | None:
    return Integration.objects.filter(token_hash=digest(token), kind=kind, is_active=True).first()
