from django.urls import path

from . import views

app_name = "oncall"

urlpatterns = [
    path("oncall/", views.on_call_now, name="now"),
    path("schedules/<int:pk>/", views.schedule_detail, name="schedule"),
    path("ical/schedule/<str:token>.ics", views.ical_schedule, name="ical-schedule"),
    path("ical/user/<str:token>.ics", views.ical_user, name="ical-user"),
]
