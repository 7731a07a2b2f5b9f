from django.contrib import admin
from django.urls import include, path

from . import health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("accounts/", include("allauth.urls")),
    path("", include("apps.integrations.urls")),
    path("api/", include("apps.incidents.api_urls")),
    path("api/", include("apps.integrations.api_urls")),
    path("api/", include("apps.accounts.api_urls")),
    path("api/", include("apps.schedules.api_urls")),
    path("api/", include("apps.escalation.api_urls")),
    path("api/", include("apps.notifications.api_urls")),
    path("api/", include("apps.assist.api_urls")),
    path("", include("apps.schedules.urls")),
    path("", include("apps.escalation.urls")),
    path("", include("apps.incidents.urls")),
    path("", include("apps.assist.urls")),
]

handler404 = "incident_manager.errors.not_found"
