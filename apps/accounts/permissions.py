from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import roles
from .models import ApiKey


class ScopedAccess(BasePermission):
    """An API key needs the resource's read or write scope; a signed-in user the role
    `allowed` says for reading or changing."""

    read_scope: str
    write_scope: str
    refused: str  # why a signed-in user may not change it
    refused_read: str | None = None  # ... may not read it (None: DRF's own message)

    def allowed(self, user, read: bool) -> bool:
        raise NotImplementedError

    def has_permission(self, request, view):
        read = request.method in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            needed = self.read_scope if read else self.write_scope
            if needed not in request.auth.scopes:
                self.message = f"This API key lacks the {needed} scope."
                return False
            return True
        if not self.allowed(request.user, read):
            if message := (self.refused_read if read else self.refused):
                self.message = message
            return False
        return True


class IncidentAccess(ScopedAccess):
    """Reading takes the incidents:read scope (API key) or any active account
    (session); changing takes incidents:write or a responder/admin role."""

    read_scope, write_scope = ApiKey.Scope.INCIDENTS_READ, ApiKey.Scope.INCIDENTS_WRITE
    refused = "Changing incidents takes the responder or admin role in a team."

    def allowed(self, user, read):
        return roles.can_view(user) if read else roles.can_respond(user)


class IntegrationAccess(ScopedAccess):
    """Integrations and their routes: reading takes the integrations:read scope (API
    key) or a team admin's account; changing takes integrations:write or a team admin."""

    read_scope, write_scope = ApiKey.Scope.INTEGRATIONS_READ, ApiKey.Scope.INTEGRATIONS_WRITE
    refused = refused_read = "Integrations and routes take the admin role in a team."

    def allowed(self, user, read):
        return roles.can_configure(user)
