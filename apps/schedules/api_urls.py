from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import OverrideViewSet, ScheduleViewSet

app_name = "schedules-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("schedules", ScheduleViewSet, basename="schedule")
router.register("overrides", OverrideViewSet, basename="override")

urlpatterns = [path("v1/", include(router.urls))]
