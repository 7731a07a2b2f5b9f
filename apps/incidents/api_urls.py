from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from .api import IncidentViewSet, SchemaDocsView

app_name = "api"

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Not Swagger UI: drf-spectacular loads it from a CDN and this must work offline.
    path("docs/", SchemaDocsView.as_view(), name="docs"),
]
