"""Rows for the outbound-channel tests."""

from django.utils import timezone

from apps.notifications.channels.webhook import new_secret
from apps.notifications.models import Notification, SlackChannelLink, SlackWorkspace, WebhookEndpoint

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"  # the one in the documented vectors (tests/fixtures)
TEAM_ID = "T0123ABCD"


def workspace(team_id=TEAM_ID, signing_secret=SIGNING_SECRET) -> SlackWorkspace:
    ws = SlackWorkspace(team_id=team_id, name="Example Corp")
    ws.bot_token = "xoxb-test-token"
    ws.signing_secret = signing_secret
    ws.save()
    return ws


def channel_link(service, ws=None, channel_id="C0123INCID") -> SlackChannelLink:
    return SlackChannelLink.objects.create(service=service, workspace=ws or workspace(), channel_id=channel_id)


def endpoint(service, url) -> WebhookEndpoint:
    hook = WebhookEndpoint(name="receiver", url=url, service=service)
    hook.secret = new_secret()
    hook.save()
    return hook


def notification(incident, channel, *, key=None, **fields) -> Notification:
    return Notification.objects.create(
        incident=incident,
        channel=channel,
        idempotency_key=key or f"test:{incident.pk}:{channel}:{Notification.objects.count()}",
        **{"next_attempt_at": timezone.now(), **fields},
    )
