from django.urls import path

from . import views

app_name = "escalation"

urlpatterns = [
    path("oncall/services/<int:pk>/", views.service_paging, name="service-paging"),
]
