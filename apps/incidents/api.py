"""The REST API for incidents (/api/v1/incidents/…).

Views stay thin: they authenticate, parse the body and call apps.incidents.services,
which lock, check the transition and write the audit entry.  Every error body has
the same shape as the ingestion endpoint's: {"error": message, "field": name?}.
"""

from django.db.models import Prefetch
from drf_spectacular.renderers import OpenApiJsonRenderer
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from drf_spectacular.views import SpectacularAPIView
from rest_framework import exceptions, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import PageNumberPagination
from rest_framework.renderers import BrowsableAPIRenderer
from rest_framework.response import Response
from rest_framework.settings import api_settings
from rest_framework.views import exception_handler as drf_exception_handler

from apps.accounts import roles
from apps.accounts.authentication import request_actor
from apps.accounts.permissions import IncidentAccess
from apps.audit.models import AuditEntry

from . import services
from .filters import IncidentFilter
from .models import Alert, Incident
from .serializers import (
    ErrorSerializer,
    IncidentDetailSerializer,
    IncidentSerializer,
    MergeSerializer,
    NoteSerializer,
    ReassignSerializer,
    ResolveSerializer,
    SplitSerializer,
    SeveritySerializer,
)

ALERTS_SHOWN = 100



class Conflict(exceptions.APIException):
    status_code = 409
    default_detail = "The incident is not in a state that allows this change."
    default_code = "conflict"


def exception_handler(exc, context):
    """DRF's handler, plus TransitionError -> 409, and one error body shape for all."""
    if isinstance(exc, services.TransitionError):
        exc = Conflict(str(exc))
    response = drf_exception_handler(exc, context)
    if response is not None:
        response.data = _error_body(exc, response.data)
    return response


def _error_body(exc, data) -> dict:
    if isinstance(exc, exceptions.ValidationError):
        message, path = _first_error(data)
        field = ".".join(str(p) for p in path if p != api_settings.NON_FIELD_ERRORS_KEY)
        return {"error": message, "field": field or "body"}
    body = {"error": str(data["detail"]) if isinstance(data, dict) and "detail" in data else str(data)}
    if isinstance(exc, exceptions.ParseError):
        body["field"] = "body"
    return body


def _first_error(detail, path=()):
    if isinstance(detail, dict) and detail:
        key, value = next(iter(detail.items()))
        return _first_error(value, (*path, key))
    if isinstance(detail, list) and detail:
        return _first_error(detail[0], path)
    return str(detail or "Invalid input."), path


def with_detail(incidents):
    return incidents.prefetch_related(
        Prefetch(
            "alerts",
            queryset=Alert.objects.order_by("-received_at", "-id")[:ALERTS_SHOWN],
            to_attr="latest_alerts",
        ),
        Prefetch("audit_entries", queryset=AuditEntry.objects.order_by("at", "id"), to_attr="timeline"),
    )


class IncidentPagination(PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 200


_changed = {
    200: IncidentDetailSerializer,
    404: OpenApiResponse(ErrorSerializer, description="No such incident."),
    409: OpenApiResponse(ErrorSerializer, description="The incident's status does not allow this change."),
}


@extend_schema_view(
    list=extend_schema(summary="List incidents, newest first"),
    retrieve=extend_schema(summary="An incident with its latest 100 alerts and its timeline"),
)
class IncidentViewSet(viewsets.ReadOnlyModelViewSet):
    permission_classes = [IncidentAccess]
    filterset_class = IncidentFilter
    pagination_class = IncidentPagination

    def get_queryset(self):
        # The principal's teams' incidents only: another team's is a 404, as none.
        incidents = roles.scoped(Incident.objects.select_related(
            "service", "acknowledged_by", "resolved_by", "assignee"
        ), self.request.user).order_by("-created_at", "-id")
        return with_detail(incidents) if self.action == "retrieve" else incidents

    def get_serializer_class(self):
        # The actions' request bodies (the browsable API draws its forms from these).
        by_action = {
            "list": IncidentSerializer,
            "resolve": ResolveSerializer,
            "notes": NoteSerializer,
            "reassign": ReassignSerializer,
            "merge": MergeSerializer,
            "split": SplitSerializer,
            "severity": SeveritySerializer,
        }
        return by_action.get(self.action, IncidentDetailSerializer)

    def _body(self) -> dict:
        serializer = self.get_serializer(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def _detail(self, incident: Incident) -> Response:
        incident = with_detail(self.get_queryset()).get(pk=incident.pk)
        return Response(IncidentDetailSerializer(incident, context=self.get_serializer_context()).data)

    @extend_schema(summary="Acknowledge a triggered incident", request=None, responses=_changed)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        incident = self.get_object()
        return self._detail(services.acknowledge(incident, actor=request_actor(request)))

    @extend_schema(
        summary="Un-acknowledge: back to triggered, escalation restarts", request=None, responses=_changed
    )
    @action(detail=True, methods=["post"])
    def unacknowledge(self, request, pk=None):
        incident = self.get_object()
        return self._detail(services.unacknowledge(incident, actor=request_actor(request)))

    @extend_schema(summary="Resolve an incident", request=ResolveSerializer, responses=_changed)
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        incident = self.get_object()
        reason = self._body().get("reason", "")
        return self._detail(services.resolve(incident, actor=request_actor(request), reason=reason))

    @extend_schema(
        summary="Add a note to the timeline",
        request=NoteSerializer,
        responses={**_changed, 400: OpenApiResponse(ErrorSerializer, description="Empty or too long.")},
    )
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        incident = self.get_object()
        text = self._body()["text"]
        try:
            incident = services.add_note(incident, text=text, actor=request_actor(request))
        except ValueError as exc:  # the service's verdict on the text (empty, too long)
            raise exceptions.ValidationError({"text": [str(exc)]}) from None
        return self._detail(incident)

    @extend_schema(
        summary="Assign the incident to someone",
        request=ReassignSerializer,
        responses={**_changed, 400: OpenApiResponse(ErrorSerializer, description="No such active user.")},
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        incident = self.get_object()
        assignee = self._body()["assignee"]
        return self._detail(services.reassign(incident, assignee=assignee, actor=request_actor(request)))

    @extend_schema(
        summary="Merge this incident into another: its alerts and keys move there, it is resolved as merged",
        request=MergeSerializer,
        responses={**_changed, 400: OpenApiResponse(ErrorSerializer, description="No such incident.")},
    )
    @action(detail=True, methods=["post"])
    def merge(self, request, pk=None):
        incident = self.get_object()
        into = self._body()["into"]
        return self._detail(services.merge(incident, into=into, actor=request_actor(request)))

    @extend_schema(
        summary="Split an alert (and the others of its key) out into a new incident",
        request=SplitSerializer,
        responses={
            201: IncidentDetailSerializer,
            400: OpenApiResponse(ErrorSerializer, description="No such alert in this incident."),
            409: _changed[409],
        },
    )
    @action(detail=True, methods=["post"])
    def split(self, request, pk=None):
        incident = self.get_object()
        alert = self._body()["alert"]
        if alert.incident_id != incident.pk:
            raise exceptions.ValidationError({"alert": [f"Alert {alert.pk} is not an alert of incident #{incident.number}."]})
        response = self._detail(services.split(alert, actor=request_actor(request)))
        response.status_code = status.HTTP_201_CREATED
        return response


    @extend_schema(
        summary="Set the severity: escalation re-plans, and the LLM no longer changes it",
        request=SeveritySerializer,
        responses={**_changed, 400: OpenApiResponse(ErrorSerializer, description="Unknown severity.")},
    )
    @action(detail=True, methods=["post"])
    def severity(self, request, pk=None):
        incident = self.get_object()
        severity = self._body()["severity"]
        return self._detail(services.change_severity(incident, severity=severity, actor=request_actor(request)))


class SchemaDocsView(SpectacularAPIView):
    """The OpenAPI 3 document of this API, readable in a browser.

    It is served with Django REST framework's own assets, so it works without
    internet access.  The machine-readable document is at /api/schema/ (YAML, or
    JSON with ?format=json); the browsable API, with forms for every action,
    starts at /api/v1/.  Authenticate with the header "Authorization: Bearer <api key>"
    (manage.py createapikey) or by signing in to the portal.
    """

    name = "API documentation"
    renderer_classes = [BrowsableAPIRenderer, OpenApiJsonRenderer]

    def _get_filename(self, request, version):
        return super()._get_filename(request, version).removesuffix(".api") + ".json"
