from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView
from rest_framework.routers import DefaultRouter

from .api import IncidentViewSet, SchemaDocsView
from .config_api import MaintenanceWindowViewSet, ServiceViewSet

app_name = "api"

router = DefaultRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("services", ServiceViewSet, basename="service")
router.register("maintenance-windows", MaintenanceWindowViewSet, basename="maintenance-window")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="schema"),
    # Not Swagger UI: drf-spectacular loads it from a CDN and this must work offline.
    path("docs/", SchemaDocsView.as_view(), name="docs"),
]
