"""Single sign-on: the groups a sign-in carries, and the teams and roles they map to.

An identity provider's groups come in its sign-in: OpenID Connect's `groups` claim (the
userinfo answer, else the ID token; another claim with the app's `groups_claim`
setting, e.g. "roles" for Azure AD app roles), or a SAML attribute (the app's
`groups_attribute` setting, else the first of COMMON_SAML_GROUP_ATTRIBUTES present).
GitHub and Google send none.

GroupMapping rows (admin) say which team and role a group of a provider gives.  The
provider's "mapped teams" are those its rows name; the memberships of those teams are
set from the sign-in's groups at every sign-in through it (services.sync_sso_memberships).
A new user whose groups map to no team is refused (adapter.SingleSignOnAdapter).
"""

from .models import GroupMapping, Membership

COMMON_SAML_GROUP_ATTRIBUTES = (
    "groups",
    "memberOf",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    "http://schemas.xmlsoap.org/claims/Group",
    "urn:oid:1.3.6.1.4.1.5923.1.5.1.1",  # isMemberOf (eduMember)
)
# A team's role, when several of a user's groups map to it: the strongest.
RANK = {Membership.Role.VIEWER: 0, Membership.Role.RESPONDER: 1, Membership.Role.ADMIN: 2}


def _as_list(value) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list | tuple):
        return [str(v) for v in value if isinstance(v, str | int)]
    return []


def groups_of(sociallogin) -> set[str]:
    """The group names a sign-in (allauth's SocialLogin) carries; empty when none."""
    provider = sociallogin.provider
    app_settings = provider.app.settings if provider.app else {}
    data = sociallogin.account.extra_data or {}
    if provider.id == "openid_connect":
        claim = app_settings.get("groups_claim", "groups")
        for source in ("userinfo", "id_token"):
            if claim in (data.get(source) or {}):
                return set(_as_list(data[source][claim]))
        return set()
    if provider.id == "saml":
        names = _as_list(app_settings.get("groups_attribute")) or COMMON_SAML_GROUP_ATTRIBUTES
        for name in names:
            if name in data:
                return set(_as_list(data[name]))
        return set()
    return set()


def provider_key(sociallogin) -> str:
    """The name GroupMapping.provider matches: the app's provider ID, or the provider's own."""
    return sociallogin.account.provider


def mapped_roles(provider: str, groups: set[str]) -> tuple[set[int], dict[int, str]]:
    """(the teams this provider's mappings name, team id -> the role `groups` give in it)."""
    teams: set[int] = set()
    roles: dict[int, str] = {}
    for mapping in GroupMapping.objects.filter(provider=provider):
        teams.add(mapping.team_id)
        if mapping.group == GroupMapping.ANY_GROUP or mapping.group in groups:
            held = roles.get(mapping.team_id)
            if held is None or RANK[mapping.role] > RANK[held]:
                roles[mapping.team_id] = mapping.role
    return teams, roles
