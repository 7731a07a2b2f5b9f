"""What accounts does when allauth announces something."""

from allauth.account.signals import user_logged_in
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from . import sso
from .models import Membership
from .services import sync_sso_memberships


@receiver(user_logged_in, dispatch_uid="accounts.sync_sso_memberships")
def sync_memberships_on_sso(sender, request, user, sociallogin=None, **kwargs):
    """At every sign-in through an identity provider, its groups set the mapped teams' memberships."""
    if sociallogin is not None:
        sync_sso_memberships(user, provider=sso.provider_key(sociallogin), groups=sso.groups_of(sociallogin))


@receiver(post_save, sender=Membership, dispatch_uid="accounts.team_admins_are_staff")
@receiver(post_delete, sender=Membership, dispatch_uid="accounts.team_admins_are_staff_no_more")
def team_admins_are_staff(sender, instance, **kwargs):
    """Django admin lets in staff only: a team admin is staff while they administer a team
    (what they see there: team_admin.py); an organisation admin always is."""
    user = instance.user
    staff = user.is_superuser or Membership.objects.filter(user=user, role=Membership.Role.ADMIN).exists()
    if user.is_staff != staff:
        type(user).objects.filter(pk=user.pk).update(is_staff=staff)
        user.is_staff = staff
