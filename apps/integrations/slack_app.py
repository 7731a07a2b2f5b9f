"""Slack interactivity (buttons, the snooze menu) and the /incident command, with
slack-bolt mounted in Django (callbacks.slack_events).

One bolt App per workspace, built from its SlackWorkspace row and kept per
process: the App verifies each request with that workspace's signing secret
(bad signature or a timestamp outside Slack's 5-minute window: 401, and no
listener runs).  Which workspace is read from the unverified body only to pick
the secret that must then match.

Buttons call the same service functions as the portal, as our user mapped from
the Slack user (a ContactMethod of kind "slack", made once from users.info's
e-mail when it matches an account, or by the user following the signed link we
send them ephemerally: slack_linking.py).
"""

import logging
import threading
import uuid
from urllib.parse import parse_qs

from django.contrib.auth import get_user_model
from slack_bolt import App
from slack_bolt.adapter.django import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from apps.accounts import roles
from apps.audit.services import Actor
from apps.incidents import services
from apps.incidents.events import AlertEvent, label_fingerprint
from apps.incidents.ingest import ingest
from apps.incidents.models import Incident, Service

from apps.notifications.channels import PermanentError, RetryableError, slack
from apps.notifications.models import ContactMethod, SlackWorkspace

from . import slack_linking
from .inbound import decode_json

log = logging.getLogger(__name__)

_handlers: dict[str, tuple[str, SlackRequestHandler]] = {}
_lock = threading.Lock()

LINK_HELP = (
    "I don't know who you are in the incident manager yet. <{url}|Link your Slack user `{user}` to your "
    "account> (log in, then confirm; the link works for an hour), then press the button again."
)


def team_id_of(body: bytes, content_type: str) -> str | None:
    """The workspace a request claims to come from (not yet verified).  Read as senders'
    bodies are: one nested too deep for bolt's own parsing never gets to it."""
    try:
        if content_type.startswith("application/json"):
            data = decode_json(body)
            return data.get("team_id") or (data.get("team") or {}).get("id")
        form = parse_qs(body.decode())
        if "payload" in form:
            data = decode_json(form["payload"][0].encode())
            return (data.get("team") or {}).get("id") or (data.get("user") or {}).get("team_id")
        return form.get("team_id", [None])[0]
    except (ValueError, UnicodeDecodeError, AttributeError):
        return None


def handler_for(team_id: str | None) -> SlackRequestHandler | None:
    if not team_id:
        return None
    workspace = SlackWorkspace.objects.filter(team_id=team_id).first()
    if workspace is None:
        return None
    with _lock:
        cached = _handlers.get(team_id)
        # Rebuilt when the sealed secrets change (a new token or signing secret).
        version = workspace.bot_token_sealed + workspace.signing_secret_sealed
        if cached is None or cached[0] != version:
            cached = (version, SlackRequestHandler(_build_app(workspace)))
            _handlers[team_id] = cached
        return cached[1]


def _build_app(workspace: SlackWorkspace) -> App:
    bot_token = workspace.bot_token

    def authorize(enterprise_id, team_id, logger):
        # The token is in our database: no auth.test round trip per workspace.
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, bot_token=bot_token)

    app = App(
        signing_secret=workspace.signing_secret,
        client=slack.client_for(workspace),
        authorize=authorize,
        process_before_response=True,  # run listeners in the request (Django's thread, its DB connection)
    )
    for action_id, verb in ((slack.ACK, "acknowledge"), (slack.RESOLVE, "resolve"), (slack.ESCALATE, "escalate")):
        app.action(action_id)(_action_listener(verb))
    app.action(slack.SNOOZE)(_snooze)
    app.command("/incident")(_command)
    return app


# ----- who is pressing the button ----------------------------------------------------------


def map_user(client: WebClient, slack_user_id: str):
    link = ContactMethod.objects.filter(kind=ContactMethod.Kind.SLACK, address=slack_user_id).select_related("user")
    if (found := link.first()) is not None:
        return found.user
    try:
        info = slack.call(client.users_info, user=slack_user_id)
    except (RetryableError, PermanentError) as exc:
        log.warning("users.info %s failed: %s", slack_user_id, exc)
        return None
    email = ((info.get("user") or {}).get("profile") or {}).get("email")
    if not email:
        return None
    users = list(get_user_model().objects.filter(email__iexact=email, is_active=True)[:2])
    if len(users) != 1:
        return None  # unknown, or ambiguous: never guess who someone is
    ContactMethod.objects.get_or_create(
        kind=ContactMethod.Kind.SLACK, address=slack_user_id, defaults={"user": users[0], "verified": True}
    )
    return users[0]


def _ephemeral(client, body, text: str) -> None:
    channel = (body.get("channel") or {}).get("id") or body.get("channel_id")
    user = (body.get("user") or {}).get("id") or body.get("user_id")
    try:
        slack.call(client.chat_postEphemeral, channel=channel, user=user, text=text)
    except (RetryableError, PermanentError) as exc:
        log.warning("ephemeral message failed: %s", exc)


def _person(client, body):
    """Our user behind the Slack user, or None (and they are told how to link)."""
    slack_user = body["user"]["id"]
    user = map_user(client, slack_user)
    if user is None:
        team_id = (body.get("team") or {}).get("id") or body["user"].get("team_id")
        _ephemeral(client, body, LINK_HELP.format(user=slack_user, url=slack_linking.link_url(team_id, slack_user)))
    return user


def _responder(client, body, team_id: int | None):
    """Our user, if they may act in that team (apps/accounts/roles.py); team_id None: the
    incident is gone."""
    user = _person(client, body)
    if user is None:
        return None
    if team_id is None:
        _ephemeral(client, body, "That incident no longer exists.")
    elif roles.can_view(user, team_id) and not roles.can_respond(user, team_id):
        _ephemeral(client, body, "You can view this incident but not change it (viewer role in its team).")
    elif not roles.can_respond(user, team_id):
        _ephemeral(client, body, "This incident belongs to a team you are not in: you cannot change it.")
    else:
        return user
    return None


def _team_of(incident_id: int) -> int | None:
    return Incident.objects.filter(pk=incident_id).values_list("service__team_id", flat=True).first()


# ----- listeners ---------------------------------------------------------------------------


def _action_listener(verb: str):
    def listener(ack, body, action, client):
        ack()
        try:
            incident_id = int(action["value"])
        except (KeyError, TypeError, ValueError):
            return
        user = _responder(client, body, _team_of(incident_id))
        if user is None:
            return
        actor = Actor(label=f"{user.get_username()} (Slack)", user=user)
        try:
            if verb == "acknowledge":
                services.acknowledge(incident_id, actor=actor)
            elif verb == "resolve":
                services.resolve(incident_id, actor=actor)
            else:
                _escalate(client, body, incident_id, actor)
        except services.TransitionError as exc:
            _ephemeral(client, body, str(exc))
        except Incident.DoesNotExist:
            _ephemeral(client, body, "That incident no longer exists.")

    listener.__name__ = f"on_{verb}"
    return listener


def _escalate(client, body, incident_id, actor) -> None:
    """incidents.services.escalate: the next level now, or (acknowledged) from the start."""
    was = Incident.objects.filter(pk=incident_id).values_list("status", flat=True).first()
    services.escalate(incident_id, actor=actor)
    if was == Incident.Status.ACKNOWLEDGED:
        _ephemeral(client, body, "Escalation restarted: the on-call people are being paged again.")
    else:
        _ephemeral(client, body, "Escalated: the next level is paged now.")


def _snooze(ack, body, action, client):
    """The menu's value is "<incident id>:<minutes>"."""
    ack()
    try:
        incident_id, minutes = (int(part) for part in action["selected_option"]["value"].split(":"))
    except (KeyError, TypeError, ValueError):
        return
    user = _responder(client, body, _team_of(incident_id))
    if user is None:
        return
    try:
        services.snooze(incident_id, minutes=minutes, actor=Actor(label=f"{user.get_username()} (Slack)", user=user))
    except (services.TransitionError, ValueError) as exc:
        _ephemeral(client, body, str(exc))
        return
    _ephemeral(client, body, f"Snoozed for {minutes} minutes; it escalates again after that unless resolved.")


def _command(ack, command, client):
    text = (command.get("text") or "").strip()
    if text.startswith("declare"):
        ack()
        _declare(client, command, text.removeprefix("declare").strip())
        return
    body = {"user": {"id": command.get("user_id")}, "team": {"id": command.get("team_id")},
            "channel": {"id": command.get("channel_id")}}
    user = _person(client, body)
    if user is None:
        ack()
        return
    open_incidents = roles.scoped(Incident.objects.exclude(status=Incident.Status.RESOLVED), user)
    open_incidents = open_incidents.select_related("service").order_by("-created_at")[:15]
    lines = [f"• {slack.text(i)}" for i in open_incidents] or ["No open incidents in your teams."]
    ack(text="Open incidents of your teams:\n" + "\n".join(lines) + "\n`/incident declare <service> <title>` opens one.")


def _declare(client, command, args: str) -> None:
    body = {
        "user": {"id": command.get("user_id")},
        "channel": {"id": command.get("channel_id")},
        "team": {"id": command.get("team_id")},
    }
    slug, _, title = args.partition(" ")
    service = Service.objects.filter(slug=slug).first()
    if service is None or not title.strip():
        _ephemeral(client, body, "Usage: `/incident declare <service slug> <title>`")
        return
    user = _responder(client, body, service.team_id)
    if user is None:
        return
    key = f"slack-declared:{uuid.uuid4()}"
    labels = {"declared_by": user.get_username(), "source": "slack"}
    event = AlertEvent(
        title=title.strip()[:500],
        status="firing",
        severity="high",
        dedup_key=key,
        fingerprint=label_fingerprint({**labels, "key": key}),
        source="slack",
        payload={"command": "/incident declare", "text": args},
        labels=labels,
    )
    [result] = ingest([event], service_id=service.pk, integration_id=None, actor=Actor.of(user))
    _ephemeral(client, body, f"Declared incident #{result.incident_number}.")
