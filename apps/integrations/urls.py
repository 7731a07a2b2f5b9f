from django.urls import path, re_path

from . import callbacks, compat_views, link_views, views

# Where alert senders post, all under SENDER_PATH_PREFIXES: the web process serves
# these through a shorter middleware stack (incident_manager/wsgi.py).
SENDER_PATH_PREFIXES = ("/api/v1/ingest/", "/api/v1/heartbeat/", "/v2/enqueue", "/opsgenie/v2/alerts")

sender_urlpatterns = [
    path("api/v1/ingest/<str:token>/<str:kind>", views.ingest_alerts, name="ingest"),
    path("api/v1/ingest/<str:kind>", views.ingest_alerts_bearer, name="ingest-bearer"),
    path("api/v1/heartbeat/<str:token>", views.heartbeat_ping, name="heartbeat"),
    # Other vendors' alert APIs, for senders that only speak those (compat_views.py).
    path("v2/enqueue", compat_views.pagerduty_enqueue, name="pagerduty-enqueue"),
    path("opsgenie/v2/alerts", compat_views.opsgenie_create, name="opsgenie-create"),
    re_path(
        r"^opsgenie/v2/alerts/(?P<identifier>.+)/(?P<action>close|acknowledge)$",
        compat_views.opsgenie_action,
        name="opsgenie-action",
    ),
]

urlpatterns = sender_urlpatterns + [
    path("integrations/slack/events", callbacks.slack_events, name="slack-events"),
    path("integrations/slack/link/<str:token>", link_views.slack_link, name="slack-link"),
    path("integrations/twilio/voice/<int:notification_id>/gather", callbacks.twilio_gather, name="twilio-gather"),
    path("integrations/twilio/status/<int:notification_id>", callbacks.twilio_status, name="twilio-status"),
]
