"""Who may do what, in one place for the portal, the API, Slack and Twilio.

A service belongs to a team, and an incident to its service's team.  In a team,
viewers read; responders also act on incidents (acknowledge, resolve, reassign,
merge, notes, severity); admins also configure the team's integrations and routes,
services, schedules, escalation policies and members.  Superusers are organisation
admins: every team, every right.

An API key acts for its creator within its team (or, made by an organisation admin
or by `manage.py createapikey` without a team, within every team), and never beyond
what its creator may do today: demote or remove the creator and the key loses that
right at once.  Its scopes (permissions.py) bound it further.

Each question is answered from the principal's team ids for a least role, computed
once per request and principal (they are kept on the user object).
"""

from django.db.models import QuerySet

from .models import Membership

VIEWER, RESPONDER, ADMIN = Membership.Role.VIEWER, Membership.Role.RESPONDER, Membership.Role.ADMIN
_AT_LEAST = {VIEWER: (VIEWER, RESPONDER, ADMIN), RESPONDER: (RESPONDER, ADMIN), ADMIN: (ADMIN,)}
EVERY_TEAM = None  # what team_ids() answers for an organisation admin


def can_sign_in(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def team_ids(principal, least: str = VIEWER) -> frozenset[int] | None:
    """The teams in which `principal` (a user, or an API key's ApiKeyUser) holds at
    least the role `least`; EVERY_TEAM (None) for an organisation admin."""
    key = getattr(principal, "key", None)
    if key is not None:
        teams = EVERY_TEAM if key.team_id is None else frozenset({key.team_id})
        if key.created_by is None:  # made by an operator's command
            return teams
        return _both(teams, team_ids(key.created_by, least))
    if not can_sign_in(principal):
        return frozenset()
    if principal.is_superuser:
        return EVERY_TEAM
    known = principal.__dict__.setdefault("_team_ids", {})
    if least not in known:
        known[least] = frozenset(
            Membership.objects.filter(user=principal, role__in=_AT_LEAST[least]).values_list("team_id", flat=True)
        )
    return known[least]


def _both(a: frozenset[int] | None, b: frozenset[int] | None) -> frozenset[int] | None:
    if a is EVERY_TEAM:
        return b
    return a if b is EVERY_TEAM else a & b


def has_role(principal, least: str, team_id: int | None = None) -> bool:
    """`least` in that team; without a team, in some team."""
    teams = team_ids(principal, least)
    if teams is EVERY_TEAM:
        return True
    return team_id in teams if team_id is not None else bool(teams)


def can_view(principal, team_id: int | None = None) -> bool:
    """Without a team: may open the portal's pages (which show only the teams' own)."""
    if team_id is None:
        return can_sign_in(principal)
    return has_role(principal, VIEWER, team_id)


def can_respond(principal, team_id: int | None = None) -> bool:
    return has_role(principal, RESPONDER, team_id)


def can_configure(principal, team_id: int | None = None) -> bool:
    return has_role(principal, ADMIN, team_id)


def scoped(queryset: QuerySet, principal, least: str = VIEWER, team: str = "service__team") -> QuerySet:
    """The rows of `queryset` whose team (the lookup `team`) the principal holds `least` in."""
    teams = team_ids(principal, least)
    if teams is EVERY_TEAM:
        return queryset
    return queryset.filter(**{f"{team}__in": teams})
