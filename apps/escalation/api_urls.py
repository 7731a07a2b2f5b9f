from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import OnCallView, PolicyViewSet

app_name = "escalation-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("escalation-policies", PolicyViewSet, basename="policy")

urlpatterns = [
    path("v1/", include(router.urls)),
    path("v1/oncall/", OnCallView.as_view(), name="oncall"),
]
