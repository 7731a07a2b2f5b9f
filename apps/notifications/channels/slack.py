"""Slack through slack_sdk's WebClient (base URL from SLACK_API_URL, so tests and the
bench point it at a local fake).

An incident has one message per channel (SlackMessage, unique per incident and
channel): the first delivery posts it, any later one — and every change of the
incident — updates it with chat.update, and follow-up alerts go into its thread.
"""

import logging
import socket
import urllib.error

from celery import shared_task
from django.conf import settings
from django.db import transaction
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from apps.incidents.models import Incident

from .. import addresses
from ..models import SlackChannelLink, SlackMessage, SlackWorkspace
from . import NoAddress, PermanentError, RetryableError, http_error
from .email import incident_url

log = logging.getLogger(__name__)

ACK, RESOLVE, ESCALATE, SNOOZE = "incident_ack", "incident_resolve", "incident_escalate", "incident_snooze"
SEVERITY_EMOJI = {"critical": ":red_circle:", "high": ":large_orange_circle:", "medium": ":large_yellow_circle:"}


def client_for(workspace: SlackWorkspace) -> WebClient:
    # No retry handlers: the outbox owns retries and their timing.
    return WebClient(
        token=workspace.bot_token,
        base_url=settings.SLACK_API_URL,
        timeout=max(1, int(settings.NOTIFY_TIMEOUT)),
        retry_handlers=[],
    )


def call(method, **kwargs):
    """Call a WebClient method, turning its failures into Retryable/PermanentError."""
    try:
        return method(**kwargs)
    except SlackApiError as exc:
        response = exc.response
        status = response.status_code
        if status != 200:
            headers = {k.lower(): v for k, v in (response.headers or {}).items()}
            value = headers.get("retry-after")
            if isinstance(value, list):
                value = value[0]
            raise http_error(status, str(response.get("error", "")) if isinstance(response.data, dict) else "", value)
        error = response.get("error", "unknown")
        if error in {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}:
            raise RetryableError(f"slack: {error}") from None
        raise PermanentError(f"slack: {error}") from None
    except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, SlackClientError, ValueError) as exc:
        raise RetryableError(f"slack: {type(exc).__name__}: {exc}") from None


# ----- where a notification goes -----------------------------------------------------------


def _link(notification) -> SlackChannelLink:
    link = getattr(notification, "_slack_link", None)  # looked up once per attempt
    if link is None:
        link_id = notification.target.removeprefix("slack-channel:")
        link = SlackChannelLink.objects.select_related("workspace").filter(pk=int(link_id)).first()
        if link is None:
            raise PermanentError("Slack channel link deleted")
        notification._slack_link = link
    return link


def _workspace_for_person(notification) -> SlackWorkspace:
    link = (
        SlackChannelLink.objects.select_related("workspace")
        .filter(service_id=notification.incident.service_id, is_active=True)
        .first()
    )
    workspace = link.workspace if link else SlackWorkspace.objects.order_by("pk").first()
    if workspace is None:
        raise PermanentError("no Slack workspace is installed")
    return workspace


def breaker_name(notification) -> str:
    if notification.target.startswith("slack-channel:"):
        return f"slack:{_link(notification).workspace.team_id}"
    return f"slack:{_workspace_for_person(notification).team_id}"


def fallback_target(notification) -> str | None:
    if notification.recipient_id and addresses.contact(notification.recipient, "slack"):
        return ""
    return None  # a channel announcement has no Slack fallback


# ----- the message -------------------------------------------------------------------------


def escape(value: str) -> str:
    """`value` shown as written in mrkdwn (and in the plain `text`, which Slack also
    parses): &, < and > escaped as Slack documents, so that an alert's title cannot
    ping `<!channel>`, mention `<@U…>` or show a link under other words."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def text(incident: Incident) -> str:
    return f"#{incident.number} [{incident.severity}] {escape(incident.title)} ({incident.status})"


def blocks(incident: Incident) -> list[dict]:
    emoji = SEVERITY_EMOJI.get(incident.severity, ":white_circle:")
    state = incident.status
    if incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by:
        state += f" by {escape(incident.acknowledged_by.get_username())}"
    if incident.status == Incident.Status.RESOLVED and incident.resolved_by:
        state += f" by {escape(incident.resolved_by.get_username())}"
    # Cut before escaping, so that no entity is cut in half.
    title = escape(incident.title[:200])
    result = [
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": f"{emoji} *<{incident_url(incident)}|#{incident.number} {title}>*"},
            "fields": [
                {"type": "mrkdwn", "text": f"*Severity*\n{incident.severity}"},
                {"type": "mrkdwn", "text": f"*Status*\n{state}"},
                {"type": "mrkdwn", "text": f"*Service*\n{escape(incident.service.name)}"},
                {"type": "mrkdwn", "text": f"*Alerts*\n{incident.alert_count}"},
            ],
        }
    ]
    if incident.status != Incident.Status.RESOLVED:
        value = str(incident.pk)
        elements = []
        if incident.status == Incident.Status.TRIGGERED:
            elements.append(_button("Acknowledge", ACK, value, "primary"))
        elements += [
            _button("Resolve", RESOLVE, value, "danger"),
            _button("Escalate", ESCALATE, value),
            {
                "type": "static_select",
                "action_id": SNOOZE,
                "placeholder": {"type": "plain_text", "text": "Snooze"},
                "options": [{"text": {"type": "plain_text", "text": "Snooze 1h"}, "value": f"{value}:60"}],
            },
        ]
        result.append({"type": "actions", "block_id": f"incident-{incident.pk}", "elements": elements})
    return result


def _button(label, action_id, value, style=None) -> dict:
    button = {"type": "button", "text": {"type": "plain_text", "text": label}, "action_id": action_id, "value": value}
    if style:
        button["style"] = style
    return button


def _incident(incident_id: int) -> Incident:
    return Incident.objects.select_related("service", "acknowledged_by", "resolved_by").defer("embedding").get(
        pk=incident_id
    )


# ----- sending -----------------------------------------------------------------------------


def _metadata(notification) -> dict:
    """Slack message metadata naming the notification: how find_sent recognises the
    message of an attempt whose worker stopped before it could note the ts."""
    return {"event_type": "incident_notification",
            "event_payload": {"notification": notification.pk, "incident": notification.incident_id}}


def send(notification) -> str:
    incident = notification.incident  # loaded with the row by outbox.deliver, under its lock
    if not notification.target.startswith("slack-channel:"):
        user_id = addresses.contact(notification.recipient, "slack")
        if not user_id:
            raise NoAddress("no Slack user linked for this recipient")
        workspace = _workspace_for_person(notification)
        response = call(
            client_for(workspace).chat_postMessage, channel=user_id, text=text(incident), blocks=blocks(incident),
            metadata=_metadata(notification),
        )
        return response["ts"]
    link = _link(notification)
    # One message per incident and channel.  A concurrent delivery of another row for
    # the same pair blocks on this insert (ON CONFLICT DO NOTHING) until ours commits,
    # then reads our row and its ts, and updates the message instead of posting one.
    SlackMessage.objects.bulk_create(
        [SlackMessage(incident=incident, channel_id=link.channel_id, workspace=link.workspace)], ignore_conflicts=True
    )
    message = SlackMessage.objects.get(incident=incident, channel_id=link.channel_id)
    client = client_for(link.workspace)
    if message.ts:
        call(client.chat_update, channel=message.channel_id, ts=message.ts, text=text(incident), blocks=blocks(incident))
        return message.ts
    rendered = incident.updated_at
    response = call(client.chat_postMessage, channel=link.channel_id, text=text(incident), blocks=blocks(incident),
                    metadata=_metadata(notification))
    # A change committed while we posted found no message to update: catch up after commit.
    transaction.on_commit(lambda: _refresh_if_changed(incident.pk, rendered), robust=True)
    message.ts = response["ts"]
    message.channel_id = response.get("channel") or link.channel_id
    message.alert_count_posted = incident.alert_count
    message.save(update_fields=["ts", "channel_id", "alert_count_posted", "updated_at"])
    return message.ts


def find_sent(notification, since) -> str | None:
    """The ts of the message an attempt begun at `since` posted, if Slack has it: its
    worker stopped before it could note it (outbox.deliver).  Read from the
    conversation's history since shortly before, by the metadata send() puts on it."""
    if notification.target.startswith("slack-channel:"):
        link = _link(notification)
        client, channel = client_for(link.workspace), link.channel_id
    else:
        user_id = addresses.contact(notification.recipient, "slack")
        if not user_id:
            return None
        client = client_for(_workspace_for_person(notification))
        channel = call(client.conversations_open, users=user_id)["channel"]["id"]
    history = call(client.conversations_history, channel=channel, oldest=f"{since.timestamp() - 60:.6f}",
                   include_all_metadata=True, limit=200)
    for message in history.get("messages") or []:
        payload = (message.get("metadata") or {}).get("event_payload") or {}
        if payload.get("notification") == notification.pk:
            if notification.target.startswith("slack-channel:"):
                # The announcement's message: later changes of the incident update it.
                SlackMessage.objects.update_or_create(
                    incident_id=notification.incident_id, channel_id=link.channel_id,
                    defaults={"workspace": link.workspace, "ts": message["ts"],
                              "alert_count_posted": notification.incident.alert_count},
                )
            return message["ts"]
    return None


def _refresh_if_changed(incident_id: int, rendered) -> None:
    if Incident.objects.filter(pk=incident_id).exclude(updated_at=rendered).exists():
        update_slack_messages.delay(incident_id)


def update_messages(incident_id: int) -> int:
    """chat.update every posted message of the incident; returns how many.  Errors are
    logged, not raised: the next change updates the message again."""
    try:
        incident = _incident(incident_id)
    except Incident.DoesNotExist:
        return 0
    updated = 0
    for message in SlackMessage.objects.select_related("workspace").filter(incident_id=incident_id).exclude(ts=""):
        try:
            call(
                client_for(message.workspace).chat_update,
                channel=message.channel_id,
                ts=message.ts,
                text=text(incident),
                blocks=blocks(incident),
            )
            updated += 1
        except (RetryableError, PermanentError) as exc:
            log.warning("chat.update of incident %s in %s failed: %s", incident_id, message.channel_id, exc)
    return updated


def post_followups(incident_id: int) -> int:
    """Tell each message's thread about the alerts that arrived since the last reply."""
    posted = 0
    with transaction.atomic():
        try:
            incident = _incident(incident_id)
        except Incident.DoesNotExist:
            return 0
        messages = (
            SlackMessage.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("workspace")
            .filter(incident_id=incident_id, alert_count_posted__lt=incident.alert_count)
            .exclude(ts="")
        )
        for message in messages:
            new = incident.alert_count - message.alert_count_posted
            client = client_for(message.workspace)
            try:
                call(
                    client.chat_postMessage,
                    channel=message.channel_id,
                    thread_ts=message.ts,
                    text=f"{new} more alert{'s' if new != 1 else ''} ({incident.alert_count} in all); last at "
                    f"{incident.last_alert_at:%H:%M:%S} UTC",
                )
                call(client.chat_update, channel=message.channel_id, ts=message.ts, text=text(incident), blocks=blocks(incident))
            except (RetryableError, PermanentError) as exc:
                log.warning("follow-up for incident %s failed: %s", incident_id, exc)
                continue
            message.alert_count_posted = incident.alert_count
            message.save(update_fields=["alert_count_posted", "updated_at"])
            posted += 1
    return posted


@shared_task
def update_slack_messages(incident_id: int) -> int:
    """Bring the incident's Slack messages up to date (chat.update).  Idempotent: it
    renders the incident as it is now."""
    return update_messages(incident_id)


@shared_task
def post_slack_followup(incident_id: int) -> int:
    return post_followups(incident_id)
