from allauth.account.adapter import DefaultAccountAdapter
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.providers.base import AuthProcess
from django.shortcuts import render

from . import sso


class InviteOnlyAdapter(DefaultAccountAdapter):
    """An operations portal has no public sign-up: admins create users in Django admin."""

    def is_open_for_signup(self, request):
        return False


class SingleSignOnAdapter(DefaultSocialAccountAdapter):
    """Whom an identity provider may sign in (README "Single sign-on").

    A user we know (linked before, or a local user with the address the provider says it
    verified) signs in.  A new one is created only when the sign-in's groups map to at
    least one team (GroupMapping); anyone else is refused here, before a user is made.
    """

    def is_open_for_signup(self, request, sociallogin):
        return True  # the gate is pre_social_login's, on the groups

    def pre_social_login(self, request, sociallogin):
        if sociallogin.is_existing or sociallogin.state.get("process") == AuthProcess.CONNECT:
            return
        _, roles = sso.mapped_roles(sso.provider_key(sociallogin), sso.groups_of(sociallogin))
        if not roles:
            raise ImmediateHttpResponse(
                render(request, "account/sso_refused.html", {"provider": sociallogin.provider.name}, status=403)
            )
