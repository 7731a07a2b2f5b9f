from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import IntegrationViewSet, RouteViewSet

app_name = "integrations-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("integrations", IntegrationViewSet, basename="integration")
router.register(r"integrations/(?P<integration_pk>\d+)/routes", RouteViewSet, basename="route")

urlpatterns = [path("v1/", include(router.urls))]
