"""API keys: created here (the plaintext is returned once, only its digest is kept).
Memberships a single sign-on's groups give: set here."""

from django.db import transaction
from django.utils import timezone

from apps.audit.services import SYSTEM, Actor, record

from . import sso
from .models import ApiKey, Membership, Team
from .tokens import new_token


def create_api_key(*, name: str, scopes, created_by=None, team=None, actor: Actor | None = None) -> tuple[ApiKey, str]:
    """Create a key and return it with its plaintext, which is never stored or shown again.

    `created_by` is whom the key acts for, within `team` (roles.py); a key of every team
    is for organisation admins and operators (no creator).  `actor` (by default that
    user, or system) is who made it, for the audit trail.
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
    if created_by is not None and not created_by.is_superuser:
        teams = list(Team.objects.filter(membership__user=created_by))
        if team is None and len(teams) == 1:
            team = teams[0]  # their only team
        if team is None:
            raise ValueError(f"Say which team the key of {created_by.get_username()} acts in: they are in "
                             f"{len(teams)} teams, and only organisation admins make keys of every team.")
        if team not in teams:
            raise ValueError(f"{created_by.get_username()} is not a member of team {team}.")
    token, key_hash = new_token("imk")
    with transaction.atomic():
        key = ApiKey.objects.create(
            name=name, prefix=token[:10], key_hash=key_hash, scopes=scopes, created_by=created_by, team=team
        )
        record(
            "apikey.created",
            actor=actor or (Actor.of(created_by) if created_by else SYSTEM),
            data={"key": key.pk, "name": name, "prefix": key.prefix, "scopes": scopes, "team": team and team.slug},
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


def sync_sso_memberships(user, *, provider: str, groups: set[str]) -> dict:
    """Set `user`'s memberships of the teams `provider`'s group mappings name from the
    groups a sign-in through it carried: added, role changed, or removed when no group
    maps to the team any more.  Other teams are left alone.  Audited when anything changed."""
    teams, roles = sso.mapped_roles(provider, groups)
    changes = {"added": {}, "changed": {}, "removed": []}
    with transaction.atomic():
        held = {m.team_id: m for m in Membership.objects.select_for_update().filter(user=user, team_id__in=teams)}
        for team_id, role in roles.items():
            membership = held.get(team_id)
            if membership is None:
                Membership.objects.get_or_create(user=user, team_id=team_id, defaults={"role": role})
                changes["added"][team_id] = role
            elif membership.role != role:
                changes["changed"][team_id] = [membership.role, role]
                membership.role = role
                membership.save(update_fields=["role"])
        gone = sorted(set(held) - set(roles))
        if gone:
            Membership.objects.filter(user=user, team_id__in=gone).delete()
            changes["removed"] = gone
        if any(changes.values()):
            record(
                "membership.synced",
                actor=Actor(f"single sign-on ({provider})"),
                data={"user": user.pk, "username": user.get_username(), "provider": provider,
                      "groups": sorted(groups)[:100], **changes},
            )
    return changes
