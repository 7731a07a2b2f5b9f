"""Serializers of the configuration API's teams, members and users (api.py)."""

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError as ModelValidationError
from rest_framework import serializers

from . import roles
from .config_api import ModelValidated
from .models import Membership, Team, UserIdentity

User = get_user_model()

EXTERNAL_ID_HELP = "Your own id for it (a config-as-code tool's, an importer's): unique per type; find it with ?external_id=."


def external_id_of(user) -> str | None:
    try:
        return user.identity.external_id if user.pk else None
    except UserIdentity.DoesNotExist:
        return None


class ExternalId(serializers.CharField):
    """An optional external_id; blank is none (so that two blanks do not collide)."""

    def __init__(self, **kwargs):
        super().__init__(max_length=200, required=False, allow_null=True, allow_blank=True,
                         help_text=EXTERNAL_ID_HELP, **kwargs)

    def to_internal_value(self, data):
        return super().to_internal_value(data) or None


class TeamSerializer(ModelValidated):
    external_id = ExternalId()

    class Meta:
        model = Team
        fields = ["id", "name", "slug", "external_id"]
        read_only_fields = ["id"]


class MemberSerializer(ModelValidated):
    user = serializers.SlugRelatedField(
        slug_field="username", queryset=User.objects.filter(is_active=True),
        help_text="Username of an active user.",
    )
    external_id = ExternalId()

    class Meta:
        model = Membership
        fields = ["id", "user", "role", "external_id"]
        read_only_fields = ["id"]

    def validate_user(self, user):
        # As in admin (team_admin.py): a team admin chooses among their teams' users only,
        # so that adding someone to a team cannot reveal their contact methods.
        teams = roles.team_ids(self.context["request"].user, roles.ADMIN)
        if teams is not roles.EVERY_TEAM and not Membership.objects.filter(user=user, team__in=teams).exists():
            raise serializers.ValidationError(f"Object with username={user.get_username()} does not exist.")
        team = self.context["team"]
        taken = Membership.objects.filter(team=team, user=user).exclude(pk=getattr(self.instance, "pk", None))
        if taken.exists():
            raise serializers.ValidationError(f"{user.get_username()} is already a member of {team}.")
        return user

    def create(self, validated_data):
        return self._saved(Membership(team=self.context["team"]), dict(validated_data))

    def update(self, instance, validated_data):
        return self._saved(instance, dict(validated_data))


class UserSerializer(serializers.ModelSerializer):
    """auth.User's own fields, `name` (first and last name, split at the first space)
    and external_id (kept in UserIdentity).  Creating one puts them in `team`."""

    name = serializers.CharField(max_length=301, required=False, allow_blank=True,
                                 help_text="Full name: its first word is stored as the first name, the rest as the last.")
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    external_id = ExternalId()
    team = serializers.SlugRelatedField(
        slug_field="slug", queryset=Team.objects.all(), write_only=True, required=False,
        help_text="On creation: slug of the team (one you administer) the new user joins. Needed unless you are an organisation admin.",
    )
    role = serializers.ChoiceField(choices=Membership.Role.choices, default=Membership.Role.RESPONDER, write_only=True,
                                   help_text="On creation: their role in `team`.")
    teams = serializers.SerializerMethodField(help_text="The user's teams (slugs) and roles in them.")

    class Meta:
        model = User
        fields = ["id", "username", "email", "name", "is_active", "external_id", "team", "role", "teams"]
        read_only_fields = ["id"]

    def get_teams(self, user) -> dict[str, str]:
        return {m.team.slug: m.role for m in user.membership_set.all()}

    def to_representation(self, user):
        data = super().to_representation(user)
        data["name"] = user.get_full_name()
        data["external_id"] = external_id_of(user)
        return data

    def validate_name(self, value):
        first, _, last = " ".join(value.split()).partition(" ")
        if len(first) > 150 or len(last) > 150:
            raise serializers.ValidationError("Each of the first word and the rest may have at most 150 characters.")
        return value

    def validate_external_id(self, value):
        taken = UserIdentity.objects.filter(external_id=value).exclude(user_id=getattr(self.instance, "pk", None))
        if value is not None and taken.exists():
            raise serializers.ValidationError("A user with this external id already exists.")
        return value

    def _saved(self, user, data):
        data.pop("team", None), data.pop("role", None)
        external_id = data.pop("external_id", external_id_of(user))
        if "name" in data:
            user.first_name, _, user.last_name = " ".join(data.pop("name").split()).partition(" ")
        for field, value in data.items():
            setattr(user, field, value)
        if not user.pk:
            user.set_unusable_password()  # they sign in through SSO, or an admin sets one
        try:
            user.full_clean(validate_unique=True)
        except ModelValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        user.save()
        user.identity, _ = UserIdentity.objects.update_or_create(user=user, defaults={"external_id": external_id})
        user.__dict__.pop("_prefetched_objects_cache", None)
        return user

    def create(self, validated_data):
        team, role = validated_data.get("team"), validated_data.get("role")
        user = self._saved(User(), dict(validated_data))
        if team is not None:
            Membership.objects.create(user=user, team=team, role=role)
        return user

    def update(self, user, validated_data):
        return self._saved(user, dict(validated_data))
