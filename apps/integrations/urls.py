from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/ingest/<str:token>/<str:kind>", views.ingest_alerts, name="ingest"),
]
