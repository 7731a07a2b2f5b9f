"""The REST API's configuration resources: one base for every app's (issue 17).

A resource is a ModelViewSet over a team's objects (services, schedules, policies…):
- who: an API key with `<scope>:read` / `<scope>:write` (permissions.py) within its
  team and its creator's role, or a signed-in user; team viewers read, team admins
  write (roles.py); another team's object is a 404, as one that does not exist;
- what: the model's own validation (`full_clean`, as admin forms run it) answers a
  400 naming the field; a write that would put the object in a team the principal
  does not administer is refused the same way, naming the field that leads there;
- every write is audited in its transaction: `<resource>.created`, `.changed`,
  `.deleted`, with the object, its external_id and the fields written;
- `?external_id=` finds an object again by the id a config-as-code tool gave it.
"""

from django.core.exceptions import ValidationError as ModelValidationError
from django.db import transaction
from rest_framework import exceptions, serializers, viewsets

from apps.audit.services import record

from . import roles
from .authentication import request_actor
from .permissions import ScopedAccess


def team_of(obj, team_path: str) -> int | None:
    """The team id at the end of `team_path` ("team", "service__team", …) from obj."""
    *parts, last = team_path.split("__")
    for part in parts:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


def access(scope: str, team_path: str) -> type[ScopedAccess]:
    """The permission class of a resource: its scopes; viewers read, team admins write."""
    return type(f"{scope.title()}Access", (ScopedAccess,), {
        "read_scope": f"{scope}:read", "write_scope": f"{scope}:write",
        "read_role": roles.VIEWER, "write_role": roles.ADMIN,
        "refused": f"Changing {scope} takes the admin role in the team.",
        "team_of": lambda self, obj: team_of(obj, team_path),
    })


class ModelValidated(serializers.ModelSerializer):
    """Runs the model's full_clean (what admin forms run) before saving; its errors are
    400s naming the field.  Many-to-many fields are set after the save, as forms do."""

    def _saved(self, instance, validated_data):
        many = {name: validated_data.pop(name) for name in list(validated_data)
                if name in {f.name for f in instance._meta.many_to_many}}
        for name, value in validated_data.items():
            setattr(instance, name, value)
        try:
            instance.full_clean(validate_unique=True)
        except ModelValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        instance.save()
        for name, value in many.items():
            getattr(instance, name).set(value)
        return instance

    def create(self, validated_data):
        return self._saved(self.Meta.model(), validated_data)

    def update(self, instance, validated_data):
        return self._saved(instance, validated_data)


class ConfigViewSet(viewsets.ModelViewSet):
    """Subclasses set queryset, serializer_class, `scope` (e.g. "schedules"), `team_path`
    and `resource` (the audit verb's noun, e.g. "schedule")."""

    scope: str
    team_path: str
    resource: str
    filterset_fields = ["external_id"]

    def get_permissions(self):
        return [access(self.scope, self.team_path)()]

    def get_queryset(self):
        return roles.scoped(super().get_queryset(), self.request.user, roles.VIEWER, team=self.team_path)

    def _write(self, serializer, verb: str):
        with transaction.atomic():
            obj = serializer.save()
            if not roles.can_configure(self.request.user, team_of(obj, self.team_path)):
                field = self.team_path.split("__")[0]
                raise exceptions.ValidationError({field: ["You do not administer the team this would belong to."]})
            self._audit(verb, obj, fields=sorted(serializer.validated_data))
        return obj

    def _audit(self, verb: str, obj, **data) -> None:
        record(f"{self.resource}.{verb}", actor=request_actor(self.request),
               data={"id": obj.pk, "object": str(obj), "external_id": getattr(obj, "external_id", None), **data})

    def perform_create(self, serializer):
        self._write(serializer, "created")

    def perform_update(self, serializer):
        self._write(serializer, "changed")

    def perform_destroy(self, instance):
        with transaction.atomic():
            self._audit("deleted", instance)
            instance.delete()
