from django.urls import path
from django.views.generic import RedirectView

from . import views

app_name = "portal"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="portal:incident-list"), name="home"),
    path("incidents/", views.incident_list, name="incident-list"),
    path("incidents/<int:pk>/", views.incident_detail, name="incident-detail"),
    path("incidents/<int:pk>/acknowledge", views.incident_acknowledge, name="incident-acknowledge"),
    path("incidents/<int:pk>/unacknowledge", views.incident_unacknowledge, name="incident-unacknowledge"),
    path("incidents/<int:pk>/resolve", views.incident_resolve, name="incident-resolve"),
    path("incidents/<int:pk>/notes", views.incident_note, name="incident-note"),
    path("incidents/<int:pk>/merge", views.incident_merge, name="incident-merge"),
    path("incidents/<int:pk>/alerts/<int:alert_pk>/split", views.alert_split, name="alert-split"),
    path("incidents/<int:pk>/severity", views.incident_severity, name="incident-severity"),
]
