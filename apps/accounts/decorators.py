"""Who may call a portal view: one decorator for every app's pages."""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django_htmx.http import HttpResponseClientRefresh


def role_required(check):
    """Sign-in required, then 403 unless check(user) (apps.accounts.roles): a
    signed-in user lacking a role should be told so, not sent back to the login page."""

    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                if getattr(request, "htmx", False):
                    # A fragment asked for by a page whose session has ended: reload
                    # that page (which then goes to the login form) rather than
                    # swapping the login form into the middle of it.
                    return HttpResponseClientRefresh()
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
