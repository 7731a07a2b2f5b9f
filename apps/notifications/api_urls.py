from django.urls import include, path
from rest_framework.routers import DefaultRouter

from .api import ContactMethodViewSet, NotificationRuleViewSet, SlackChannelLinkViewSet, WebhookViewSet

app_name = "notifications-api"

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register(r"users/(?P<user_pk>\d+)/contact-methods", ContactMethodViewSet, basename="contact-method")
router.register(r"users/(?P<user_pk>\d+)/notification-rules", NotificationRuleViewSet, basename="notification-rule")
router.register("webhooks", WebhookViewSet, basename="webhook")
router.register("slack-channels", SlackChannelLinkViewSet, basename="slack-channel")

urlpatterns = [path("v1/", include(router.urls))]
