"""The configuration API of teams, their members and users (issue 17), on ConfigViewSet.

- /api/v1/teams/ (teams:read, teams:write): a team's viewers read it, its admins
  change it.  Creating or deleting a team takes an organisation admin: a superuser, or
  an API key of every team (no team) made by one or by `manage.py createapikey`.
- /api/v1/teams/<team_pk>/members/ (teams scopes): viewers read, team admins add,
  change and remove members; a team admin adds users of their own teams only (as in
  admin), an organisation admin anyone.
- /api/v1/users/ (users:read, users:write): the users of the principal's teams.  A team
  admin creates one into a team they administer, and changes a user only when they
  administer every team that user is in (so that no team's admin can take over the
  account of another team's member, say by changing its e-mail); superusers are changed
  by organisation admins only.
"""

from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from django_filters import rest_framework as filters
from django.db.models.deletion import ProtectedError, RestrictedError
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import SAFE_METHODS

from . import roles
from .config_api import ConfigViewSet, access
from .models import Membership, Team
from .serializers import MemberSerializer, TeamSerializer, UserSerializer

User = get_user_model()


def crud_schema(noun: str, plural: str, *, create: str | None = None, destroy: str | None = None):
    """Summaries of a resource's six operations."""
    return extend_schema_view(
        list=extend_schema(summary=f"List {plural}"),
        retrieve=extend_schema(summary=f"Read a {noun}"),
        create=extend_schema(summary=create or f"Create a {noun}"),
        update=extend_schema(summary=f"Replace a {noun}"),
        partial_update=extend_schema(summary=f"Change some fields of a {noun}"),
        destroy=extend_schema(summary=destroy or f"Delete a {noun}"),
    )


# Teams


def is_org_admin(principal) -> bool:
    return roles.team_ids(principal, roles.ADMIN) is roles.EVERY_TEAM


class TeamAccess(access("teams", "team")):
    refused_org = "Creating or deleting a team takes an organisation admin (a superuser, or a key of every team)."

    def team_of(self, team):
        return team.pk

    def has_permission(self, request, view):
        if not super().has_permission(request, view):
            return False
        if view.action in ("create", "destroy") and not is_org_admin(request.user):
            self.message = self.refused_org
            return False
        return True


class TeamInUse(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT


class TeamFilter(filters.FilterSet):
    class Meta:
        model = Team
        fields = ["external_id", "slug"]


@crud_schema("team", "the teams you are in", create="Create a team (organisation admins only)",
             destroy="Delete a team and everything it holds (organisation admins only)")
class TeamViewSet(ConfigViewSet):
    queryset = Team.objects.order_by("name")
    serializer_class = TeamSerializer
    filterset_class = TeamFilter
    scope, team_path, resource = "teams", "pk", "team"
    lookup_value_regex = r"[0-9]+"

    def get_permissions(self):
        return [TeamAccess()]

    @extend_schema(responses={204: None, 409: OpenApiResponse(
        inline_serializer("TeamInUse", {"error": serializers.CharField()}),
        description="The team still has services or schedules: delete or move them first.")})
    def destroy(self, request, *args, **kwargs):
        return super().destroy(request, *args, **kwargs)

    def perform_destroy(self, instance):
        try:
            super().perform_destroy(instance)
        except (ProtectedError, RestrictedError) as exc:
            held = sorted({str(obj._meta.verbose_name_plural) for obj in exc.args[1]})
            raise TeamInUse(f"Team {instance} still has {', '.join(held)}: delete or move them first.") from None

    def _write(self, serializer, verb: str):
        with transaction.atomic():
            team = serializer.save()
            if not roles.can_configure(self.request.user, team.pk):
                raise exceptions.ValidationError({"slug": ["You do not administer this team."]})
            self._audit(verb, team, fields=sorted(serializer.validated_data))
        return team


# Members


class MemberFilter(filters.FilterSet):
    user = filters.CharFilter(field_name="user__username", help_text="Username.")

    class Meta:
        model = Membership
        fields = ["external_id", "role", "user"]


TEAM_PK = OpenApiParameter("team_pk", int, OpenApiParameter.PATH, description="The team's id.")


@extend_schema(parameters=[TEAM_PK])
@crud_schema("member", "a team's members and their roles", create="Add a member to a team",
             destroy="Remove a member from a team")
class MemberViewSet(ConfigViewSet):
    queryset = Membership.objects.select_related("user", "team").order_by("user__username")
    serializer_class = MemberSerializer
    filterset_class = MemberFilter
    scope, team_path, resource = "teams", "team", "member"
    lookup_value_regex = r"[0-9]+"

    def team(self) -> Team:
        """The team, if the principal is in it: another team's is a 404."""
        if "_team" not in self.__dict__:
            teams = roles.scoped(Team.objects.all(), self.request.user, roles.VIEWER, team="pk")
            self._team = get_object_or_404(teams, pk=self.kwargs["team_pk"])
        return self._team

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, typing the document's ids
            return Membership.objects.none()
        return super().get_queryset().filter(team=self.team())

    def get_serializer_context(self):
        context = super().get_serializer_context()
        if not getattr(self, "swagger_fake_view", False) and "team_pk" in self.kwargs:
            context["team"] = self.team()
        return context

    def perform_create(self, serializer):
        if not roles.can_configure(self.request.user, self.team().pk):
            raise exceptions.PermissionDenied("Changing teams takes the admin role in the team.")
        super().perform_create(serializer)


# Users


def may_change_user(principal, user) -> bool:
    """An organisation admin, or an admin of every team `user` is in (and they are in one)."""
    teams = roles.team_ids(principal, roles.ADMIN)
    if teams is roles.EVERY_TEAM:
        return True
    if user.is_superuser:
        return False
    theirs = set(Membership.objects.filter(user=user).values_list("team_id", flat=True))
    return bool(theirs) and theirs <= teams


class UserAccess(access("users", "membership__team")):
    """Reading: the users of the principal's teams (the queryset); changing a user, their
    contact methods or notification rules: may_change_user."""

    refused = "Changing a user takes the admin role in every team they are in."

    def user_of(self, obj):
        return obj

    def has_object_permission(self, request, view, obj):
        if request.method in SAFE_METHODS:
            return True  # listed: a member of one of the principal's teams
        if may_change_user(request.user, self.user_of(obj)):
            return True
        self.message = self.refused
        return False


class UserFilter(filters.FilterSet):
    external_id = filters.CharFilter(field_name="identity__external_id", help_text="The id your tool gave the user.")
    team = filters.CharFilter(field_name="membership__team__slug", help_text="Slug of one of their teams.")
    email = filters.CharFilter(field_name="email", lookup_expr="iexact", help_text="E-mail address, any case.")

    class Meta:
        model = User
        fields = ["username", "is_active"]


@crud_schema("user", "the users of your teams", create="Create a user in a team you administer")
class UserViewSet(ConfigViewSet):
    queryset = User.objects.select_related("identity").prefetch_related(
        Prefetch("membership_set", queryset=Membership.objects.select_related("team"))
    ).order_by("username")
    serializer_class = UserSerializer
    filterset_class = UserFilter
    scope, team_path, resource = "users", "membership__team", "user"
    lookup_value_regex = r"[0-9]+"

    def get_permissions(self):
        return [UserAccess()]

    def get_queryset(self):
        return super().get_queryset().distinct()

    def _write(self, serializer, verb: str):
        with transaction.atomic():
            user = serializer.save()
            if not may_change_user(self.request.user, user):
                raise exceptions.ValidationError({"team": ["Give a team you administer (and the user is in no other)."]})
            self._audit(verb, user, fields=sorted(serializer.validated_data))
        return user

    def _audit(self, verb: str, obj, **data) -> None:
        if "external_id" not in data:
            data["external_id"] = getattr(getattr(obj, "identity", None), "external_id", None)
        super()._audit(verb, obj, **data)
