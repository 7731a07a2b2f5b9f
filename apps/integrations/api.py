"""The REST API for integrations (/api/v1/integrations/…, on apps.accounts.config_api)
and their routes (/api/v1/integrations/<id>/routes/…).

Who may call: API keys with integrations:read (reads) or integrations:write
(changes), or a signed-in user: team viewers read integrations, team admins change
them and read and change routes.  Every change is audited.  Creating an integration
answers its token and ingestion URL, once: only the token's digest is stored.
"""

from django.db import transaction
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from apps.accounts import roles
from apps.accounts.config_api import ConfigViewSet
from apps.accounts.authentication import request_actor
from apps.accounts.permissions import IntegrationAccess
from apps.audit.services import record
from apps.incidents.config_api import summaries
from apps.incidents.serializers import ErrorSerializer

from . import routes
from .models import Integration, Route
from .parsers import PayloadError
from .serializers import IntegrationCreatedSerializer, IntegrationSerializer, PreviewSerializer, RouteSerializer


@summaries(
    "integrations (inbound alert sources)", "integration",
    create=extend_schema(
        summary="Create an integration: the answer holds its token and ingestion URL, shown this once",
        request=IntegrationSerializer, responses={201: IntegrationCreatedSerializer},
    ),
)
class IntegrationViewSet(ConfigViewSet):
    scope, team_path, resource = "integrations", "service__team", "integration"
    serializer_class = IntegrationSerializer
    queryset = Integration.objects.select_related("service").order_by("name", "pk")

    def create(self, request, *args, **kwargs):
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        self.perform_create(serializer)
        shown = IntegrationCreatedSerializer(serializer.instance, context=self.get_serializer_context())
        return Response(shown.data, status=status.HTTP_201_CREATED)


def _described(route: Route) -> dict:
    return {"integration": route.integration.name, "route": route.pk, "name": route.name,
            "matchers": route.matchers, "service": route.service.slug if route.service else None,
            "position": route.position, "is_active": route.is_active}


@extend_schema(parameters=[OpenApiParameter("integration_pk", int, OpenApiParameter.PATH)])
@extend_schema_view(
    list=extend_schema(summary="An integration's routes, in the order they are tried"),
    create=extend_schema(summary="Add a route: alerts its matchers take go to its service"),
)
class RouteViewSet(viewsets.ModelViewSet):
    permission_classes = [IntegrationAccess]
    serializer_class = RouteSerializer
    pagination_class = None  # a handful per integration, read in order
    filterset_fields = ["external_id"]

    def integration(self) -> Integration:
        """The integration, if the principal administers its team: another team's is a 404."""
        return get_object_or_404(self._integrations(), pk=self.kwargs["integration_pk"])

    def _integrations(self):
        return roles.scoped(Integration.objects.select_related("service"), self.request.user, roles.ADMIN)

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # drf-spectacular, typing the document's ids
            return Route.objects.none()
        return Route.objects.filter(integration_id=self.kwargs["integration_pk"],
                                    integration__in=self._integrations()).select_related("service", "integration__service")

    def _check_target(self, serializer):
        """A route may send alerts only to a service of a team the principal administers."""
        service = serializer.validated_data.get("service")
        if service is not None and not roles.can_configure(self.request.user, service.team_id):
            raise exceptions.ValidationError({"service": [f"You do not administer the team of service {service.slug}."]})

    def perform_create(self, serializer):
        self._check_target(serializer)
        with transaction.atomic():
            route = serializer.save(integration=self.integration())
            record("route.created", actor=request_actor(self.request), data=_described(route))

    def perform_update(self, serializer):
        self._check_target(serializer)
        with transaction.atomic():
            route = serializer.save()
            record("route.changed", actor=request_actor(self.request), data=_described(route))

    def perform_destroy(self, instance):
        with transaction.atomic():
            record("route.deleted", actor=request_actor(self.request), data=_described(instance))
            instance.delete()

    @extend_schema(
        summary="Test a payload: where each of its alerts would go, by the routes as saved (nothing is stored)",
        request={"application/json": dict},
        responses={200: PreviewSerializer(many=True), 400: OpenApiResponse(ErrorSerializer, description="Not a payload of this integration's format.")},
    )
    @action(detail=False, methods=["post"])
    def preview(self, request, integration_pk=None):
        try:
            previews = routes.preview(self.integration(), request.data)
        except PayloadError as exc:
            raise exceptions.ValidationError({exc.field: [exc.message]}) from None
        return Response(PreviewSerializer(previews, many=True).data)
