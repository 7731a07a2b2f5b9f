from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models


class Team(models.Model):
    name = models.CharField(max_length=100, unique=True)
    slug = models.SlugField(unique=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    def __str__(self):
        return self.name


class Membership(models.Model):
    class Role(models.TextChoices):
        ADMIN = "admin"
        RESPONDER = "responder"
        VIEWER = "viewer"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    team = models.ForeignKey(Team, on_delete=models.CASCADE)
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.RESPONDER)
    # For config-as-code tools and importers (issue 17): the id they know it by.
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "team"], name="one_membership_per_team")]

    def __str__(self):
        return f"{self.user} in {self.team} ({self.role})"


class UserIdentity(models.Model):
    """What a user has beyond auth.User's own fields, which cannot take more: the id a
    config-as-code tool or an importer (Grafana OnCall, Opsgenie, PagerDuty) knows them by."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="identity")
    external_id = models.CharField(max_length=200, null=True, blank=True, unique=True)

    def __str__(self):
        return f"{self.user} ({self.external_id})"


class ApiKey(models.Model):
    """A bearer key for the REST API.  Only its SHA-256 digest is stored."""

    class Scope(models.TextChoices):
        INCIDENTS_READ = "incidents:read"
        INCIDENTS_WRITE = "incidents:write"
        INTEGRATIONS_READ = "integrations:read"
        INTEGRATIONS_WRITE = "integrations:write"
        # Configuration (apps/accounts/config_api.py): read and write per resource.
        TEAMS_READ = "teams:read"  # teams and memberships
        TEAMS_WRITE = "teams:write"
        USERS_READ = "users:read"  # users, their contact methods and notification rules
        USERS_WRITE = "users:write"
        SERVICES_READ = "services:read"  # services, grouping rules, dependencies, maintenance windows
        SERVICES_WRITE = "services:write"
        SCHEDULES_READ = "schedules:read"  # schedules, layers, overrides; who is on call
        SCHEDULES_WRITE = "schedules:write"
        POLICIES_READ = "policies:read"  # escalation policies and their rules
        POLICIES_WRITE = "policies:write"
        NOTIFICATIONS_READ = "notifications:read"  # webhooks, Slack channel links
        NOTIFICATIONS_WRITE = "notifications:write"
        RUNBOOKS_READ = "runbooks:read"
        RUNBOOKS_WRITE = "runbooks:write"

    name = models.CharField(max_length=100)
    prefix = models.CharField(max_length=16, help_text="First characters of the key, to recognise it.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    scopes = ArrayField(models.CharField(max_length=32, choices=Scope.choices))
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    # The team the key acts in (roles.py); none: every team its creator may act in.
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="api_keys",
        help_text="The key reads and acts only in this team. Empty: every team its creator may act in.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.name} ({self.prefix}…)"


class GroupMapping(models.Model):
    """A group an identity provider sends, and the team and role its members get.

    At each single sign-on through `provider`, the user's memberships of the teams that
    provider's mappings name are set from the groups the sign-in carried, added, changed
    and removed (apps/accounts/sso.py).  Teams no mapping of the provider names are left
    as admins set them.
    """

    ANY_GROUP = "*"

    provider = models.CharField(
        max_length=200,
        help_text="The provider's ID as sign-ins record it: an OpenID Connect or SAML social application's "
        "provider ID (OIDC_PROVIDER_ID, 'oidc' by default; 'saml' for SAML_* settings), or 'github', 'google'.",
    )
    group = models.CharField(
        max_length=255,
        help_text="The group's name (or ID, for Azure AD) in the groups claim or attribute, exactly as sent. "
        "'*' matches everyone who signs in through this provider.",
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="group_mappings")
    role = models.CharField(max_length=16, choices=Membership.Role.choices, default=Membership.Role.VIEWER)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "group", "team"], name="one_role_per_group_and_team")
        ]
        ordering = ["provider", "group", "team__name"]

    def __str__(self):
        return f"{self.provider}: {self.group} → {self.team} ({self.role})"
