from django.urls import path

from . import views

app_name = "assist"

urlpatterns = [
    path("incidents/<int:pk>/postmortem", views.postmortem, name="postmortem"),
    path("incidents/<int:pk>/postmortem/draft", views.postmortem_draft, name="postmortem-draft"),
    path("incidents/<int:pk>/postmortem.md", views.postmortem_markdown, name="postmortem-markdown"),
    path("runbooks/<int:pk>/", views.runbook, name="runbook"),
]
