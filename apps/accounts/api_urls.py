from django.urls import include, path
from rest_framework.routers import DefaultRouter

app_name = "accounts-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False

urlpatterns = [path("v1/", include(router.urls))]
