from rest_framework.permissions import SAFE_METHODS, BasePermission

from . import roles
from .models import ApiKey


class ScopedAccess(BasePermission):
    """An API key needs the resource's read or write scope; then it, or a signed-in
    user, needs the role `read_role` or `write_role` in the object's team (roles.py:
    a key's team and its creator's current role bound it).  Views list only the
    principal's teams' objects (roles.scoped), so another team's object is a 404."""

    read_scope: str
    write_scope: str
    read_role: str
    write_role: str
    refused: str  # why the principal may not change it
    refused_read: str | None = None  # ... may not read it (None: DRF's own message)

    def team_of(self, obj) -> int:
        raise NotImplementedError

    def has_permission(self, request, view):
        read = request.method in SAFE_METHODS
        if isinstance(request.auth, ApiKey):
            needed = self.read_scope if read else self.write_scope
            if needed not in request.auth.scopes:
                self.message = f"This API key lacks the {needed} scope."
                return False
        if not self._allowed(request, read, team_id=None):
            return False
        return True

    def has_object_permission(self, request, view, obj):
        return self._allowed(request, request.method in SAFE_METHODS, team_id=self.team_of(obj))

    def _allowed(self, request, read: bool, team_id: int | None) -> bool:
        if read and team_id is None and self.read_role == roles.VIEWER:
            allowed = roles.can_sign_in(request.user)  # lists show only the principal's teams
        else:
            allowed = roles.has_role(request.user, self.read_role if read else self.write_role, team_id)
        if not allowed and (message := (self.refused_read if read else self.refused)):
            self.message = message
        return allowed


class IncidentAccess(ScopedAccess):
    """Reading takes the incidents:read scope (API key) and a role in the incident's
    team; changing takes incidents:write and the responder or admin role there."""

    read_scope, write_scope = ApiKey.Scope.INCIDENTS_READ, ApiKey.Scope.INCIDENTS_WRITE
    read_role, write_role = roles.VIEWER, roles.RESPONDER
    refused = "Changing incidents takes the responder or admin role in the incident's team."

    def team_of(self, incident):
        return incident.service.team_id


class IntegrationAccess(ScopedAccess):
    """Integrations and their routes: the integrations:read or integrations:write scope
    (API key) and the admin role in the integration's team."""

    read_scope, write_scope = ApiKey.Scope.INTEGRATIONS_READ, ApiKey.Scope.INTEGRATIONS_WRITE
    read_role = write_role = roles.ADMIN
    refused = refused_read = "Integrations and routes take the admin role in the integration's team."

    def team_of(self, route):
        return route.integration.service.team_id
