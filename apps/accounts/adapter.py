from allauth.account.adapter import DefaultAccountAdapter


class InviteOnlyAdapter(DefaultAccountAdapter):
    """An operations portal has no public sign-up: admins create users in Django admin."""

    def is_open_for_signup(self, request):
        return False
