from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import roles
from .models import ApiKey


class IncidentAccess(BasePermission):
    """Reading takes the incidents:read scope (API key) or any active account
    (session); changing takes incidents:write or a responder/admin role."""

    def has_permission(self, request, view):
        read = request.method in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            needed = ApiKey.Scope.INCIDENTS_READ if read else ApiKey.Scope.INCIDENTS_WRITE
            if needed not in request.auth.scopes:
                self.message = f"This API key lacks the {needed} scope."
                return False
            return True
        if read:
            return roles.can_view(request.user)
        if not roles.can_respond(request.user):
            self.message = "Changing incidents takes the responder or admin role in a team."
            return False
        return True


class IntegrationAccess(BasePermission):
    """Integrations and their routes: reading takes the integrations:read scope (API
    key) or a team admin's account; changing takes integrations:write or a team admin."""

    def has_permission(self, request, view):
        read = request.method in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            needed = ApiKey.Scope.INTEGRATIONS_READ if read else ApiKey.Scope.INTEGRATIONS_WRITE
            if needed not in request.auth.scopes:
                self.message = f"This API key lacks the {needed} scope."
                return False
            return True
        if not roles.can_configure(request.user):
            self.message = "Integrations and routes take the admin role in a team."
            return False
        return True
