"""Who may do what, in one place for the portal, the API and Slack.

Any signed-in, active user may read incidents.  Changing one (acknowledge,
resolve, reassign, add a note) takes the admin or responder role in some team,
or Django's superuser flag.  Viewers read only.  Configuring what comes in and
where it goes (integrations and their routes) takes the admin role in some team.
"""

from .models import Membership

RESPONDING_ROLES = (Membership.Role.ADMIN, Membership.Role.RESPONDER)


def can_view(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active)


def can_respond(user) -> bool:
    if not can_view(user):
        return False
    if user.is_superuser:
        return True
    return Membership.objects.filter(user=user, role__in=RESPONDING_ROLES).exists()


def can_configure(user) -> bool:
    if not can_view(user):
        return False
    return user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()
