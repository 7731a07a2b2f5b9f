"""API keys: created here (the plaintext is returned once, only its digest is kept)."""

from django.db import transaction
from django.utils import timezone

from apps.audit.services import SYSTEM, Actor, record

from .models import ApiKey
from .tokens import new_token


def create_api_key(*, name: str, scopes, created_by=None, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored or shown again.

    `created_by` is whom the key acts for; `actor` (by default that user, or system)
    is who made it, for the audit trail.
    """
    name = name.strip()
    if not name or len(name) > ApiKey._meta.get_field("name").max_length:
        raise ValueError("An API key needs a name of 1 to 100 characters.")
    scopes = list(dict.fromkeys(scopes))  # keep order, drop repeats
    if not scopes:
        raise ValueError("An API key needs at least one scope.")
    unknown = [s for s in scopes if s not in ApiKey.Scope.values]
    if unknown:
        raise ValueError(f"Unknown scope {', '.join(unknown)}; choose from {', '.join(ApiKey.Scope.values)}.")
    token, key_hash = new_token("imk")
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=token[:10], key_hash=key_hash, scopes=scopes, created_by=created_by
        )
        record(
            "apikey.created",
            actor=actor or (Actor.of(created_by) if created_by else SYSTEM),
            data={"key": key.pk, "name": name, "prefix": key.prefix, "scopes": scopes},
        )
    return key, token


def revoke_api_key(key: ApiKey, *, actor: Actor = SYSTEM) -> ApiKey:
    """Stop a key working at once; the row stays so the audit trail keeps its name."""
    with transaction.atomic():
        updated = ApiKey.objects.filter(pk=key.pk, revoked_at=None).update(revoked_at=timezone.now())
        if updated:
            record("apikey.revoked", actor=actor, data={"key": key.pk, "name": key.name, "prefix": key.prefix})
    key.refresh_from_db(fields=["revoked_at"])
    return key
