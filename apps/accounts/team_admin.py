"""Django admin for team admins: their teams' configuration, and nothing else.

Organisation admins (superusers) see and change everything, as Django admin does.
A team admin (the admin role in a team, roles.py) signs in to admin too (the role
makes the account staff: receivers.py) and finds there only the objects of the teams
they administer: services, integrations and routes, schedules, escalation policies,
webhooks, Slack channel links, runbooks, their teams and members.  Other models are
not shown to them.  Choices of a team, service, schedule, policy or user are limited
to their teams' own, so nothing can be moved into another team.

A ModelAdmin takes TeamScoped (first among its bases) and names `team_path`, the
lookup from its model to the team ("" for Team itself); inlines take TeamScopedInline.
"""

from django.contrib.auth import get_user_model
from django.core.exceptions import FieldDoesNotExist
from django.db.models import Q

from . import roles
from .models import Team


def _team_id(obj, path: str) -> int | None:
    for part in filter(None, path.split("__")):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj.pk if isinstance(obj, Team) else obj


def _limit(queryset, user):
    """A choice list (teams, services, schedules, policies, users) cut to the user's teams."""
    teams = roles.team_ids(user, roles.ADMIN)
    if teams is roles.EVERY_TEAM:
        return queryset
    model = queryset.model
    if model is Team:
        return queryset.filter(pk__in=teams)
    if model is get_user_model():
        return queryset.filter(membership__team__in=teams).distinct()
    for path in ("team", "service__team"):
        try:
            model._meta.get_field(path.split("__")[0])
        except FieldDoesNotExist:
            continue
        return queryset.filter(**{f"{path}__in": teams})
    return queryset


class _Choices:
    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        field = super().formfield_for_foreignkey(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _limit(field.queryset, request.user)
        return field

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if field is not None and hasattr(field, "queryset"):
            field.queryset = _limit(field.queryset, request.user)
        return field


class TeamScoped(_Choices):
    team_path: str | tuple[str, ...]  # several: the first that is set (a webhook's service, else its team)

    def _paths(self) -> tuple[str, ...]:
        return (self.team_path,) if isinstance(self.team_path, str) else self.team_path

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        teams = roles.team_ids(request.user, roles.ADMIN)
        if teams is roles.EVERY_TEAM:
            return queryset
        where = Q()
        for path in self._paths():
            where |= Q(**{f"{path or 'pk'}__in": teams})
        return queryset.filter(where)

    def _may(self, request, obj=None) -> bool:
        if obj is None:
            return roles.can_configure(request.user)
        team_id = next((t for t in (_team_id(obj, p) if p else obj.pk for p in self._paths()) if t is not None), None)
        return team_id is not None and roles.can_configure(request.user, team_id)

    def has_module_permission(self, request):
        return super().has_module_permission(request) or self._may(request)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or self._may(request, obj)

    def has_add_permission(self, request):
        # A team is made by an organisation admin; a team admin adds what a team holds.
        return super().has_add_permission(request) or ("" not in self._paths() and self._may(request))


class TeamScopedInline(_Choices):
    """Rows edited on their parent's page: the parent's own check decides (obj is the parent)."""

    def _may(self, request, obj=None) -> bool:
        return roles.can_configure(request.user)

    def has_view_permission(self, request, obj=None):
        return super().has_view_permission(request, obj) or self._may(request, obj)

    def has_change_permission(self, request, obj=None):
        return super().has_change_permission(request, obj) or self._may(request, obj)

    def has_delete_permission(self, request, obj=None):
        return super().has_delete_permission(request, obj) or self._may(request, obj)

    def has_add_permission(self, request, obj=None):
        return super().has_add_permission(request, obj) or self._may(request, obj)
