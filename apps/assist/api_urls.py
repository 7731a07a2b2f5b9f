from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import RunbookViewSet

app_name = "assist-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("runbooks", RunbookViewSet, basename="runbook")

urlpatterns = [path("v1/", include(router.urls))]
