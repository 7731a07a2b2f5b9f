from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import MemberViewSet, TeamViewSet, UserViewSet

app_name = "accounts-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("teams", TeamViewSet, basename="team")
router.register(r"teams/(?P<team_pk>\d+)/members", MemberViewSet, basename="member")
router.register("users", UserViewSet, basename="user")

urlpatterns = [path("v1/", include(router.urls))]
