"""Slack through slack_sdk and slack-bolt against a local fake of slack.com/api: the
incident message posted, then updated on every change; buttons signed with the
workspace's signing secret act as the mapped user; bad or stale signatures get 401
and change nothing."""

import hashlib
import hmac
import json
import re
import time
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
import time_machine
from django.core import signing

from apps.audit.models import AuditEntry
from apps.audit.services import Actor
from apps.incidents import services
from apps.incidents.models import Incident
from apps.integrations import slack_linking
from apps.notifications import outbox
from apps.notifications.channels import slack
from apps.notifications.models import ContactMethod, SlackMessage

from .factories import IncidentFactory, MembershipFactory, UserFactory
from .notify_fakes import _clean_breakers, fake_slack  # noqa: F401
from .notify_helpers import SIGNING_SECRET, TEAM_ID, channel_link, notification, workspace

PAYLOADS = Path(__file__).resolve().parent / "fixtures"  # copies of documented Slack payloads
EVENTS = "/integrations/slack/events"
SLACK_USER = "U0123ABCD45"


def block_actions(incident_id: int, action_id: str = "incident_ack", user: str = SLACK_USER) -> dict:
    """The recorded block_actions payload, pointed at our incident."""
    payload = json.loads((PAYLOADS / "slack_block_actions_payload.json").read_text())
    payload["user"]["id"] = user
    payload["actions"][0].update(action_id=action_id, value=str(incident_id))
    return payload


def signed_post(client, body: str, *, secret=SIGNING_SECRET, timestamp=None, content_type="application/x-www-form-urlencoded"):
    timestamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = "v0=" + hmac.new(secret.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
    return client.post(
        EVENTS,
        body,
        content_type=content_type,
        HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp,
        HTTP_X_SLACK_SIGNATURE=signature,
    )


def press(client, payload: dict, **kwargs):
    return signed_post(client, urlencode({"payload": json.dumps(payload)}), **kwargs)


# ----- the message -------------------------------------------------------------------------


def test_message_is_posted_then_updated_when_the_incident_changes(celery_worker, fake_slack, service, responder):
    link = channel_link(service)
    incident = IncidentFactory(service=service, severity="critical", title="Checkout 5xx", alert_count=3)
    n = notification(incident, "slack", target=f"slack-channel:{link.pk}")

    assert outbox.deliver(n.pk) == "delivered"
    [post] = fake_slack.calls("chat.postMessage")
    assert post.headers["Authorization"] == "Bearer xoxb-test-token"
    section = post.data["blocks"][0]
    assert f"#{incident.number} Checkout 5xx" in section["text"]["text"] and f"/incidents/{incident.pk}/" in section["text"]["text"]
    assert {"type": "mrkdwn", "text": "*Alerts*\n3"} in section["fields"]
    message = SlackMessage.objects.get(incident=incident)
    n.refresh_from_db()
    assert message.ts == n.external_id and n.status == "delivered"

    # A change from any caller (here the portal's service function) updates the message.
    services.acknowledge(incident, actor=Actor.of(responder))
    [update] = fake_slack.wait_for("chat.update")
    assert update.data["ts"] == message.ts and update.data["channel"] == "C0123INCID"
    assert "acknowledged by rita" in json.dumps(update.data["blocks"])
    buttons = [e["action_id"] for e in update.data["blocks"][1]["elements"]]
    assert slack.ACK not in buttons and slack.RESOLVE in buttons

    services.resolve(incident, actor=Actor.of(responder))
    updates = fake_slack.wait_for("chat.update", 2)
    assert len(updates[1].data["blocks"]) == 1  # resolved: no buttons left
    assert len(fake_slack.calls("chat.postMessage")) == 1


@pytest.mark.django_db
def test_sender_text_is_shown_as_written_never_pinging_nor_linking(fake_slack, service):
    """An alert's title is the sender's text: in Slack it must not ping the channel,
    mention someone, or put a link under other words."""
    link = channel_link(service)
    title = "<!channel> Checkout down, see <https://evil.example/login|https://status.example.org> & <@U0ADMIN>"
    incident = IncidentFactory(service=service, title=title)

    assert outbox.deliver(notification(incident, "slack", target=f"slack-channel:{link.pk}").pk) == "delivered"

    [post] = fake_slack.calls("chat.postMessage")
    shown = ("&lt;!channel&gt; Checkout down, see &lt;https://evil.example/login|https://status.example.org&gt; "
             "&amp; &lt;@U0ADMIN&gt;")
    assert post.data["text"] == f"#{incident.number} [{incident.severity}] {shown} ({incident.status})"
    heading = post.data["blocks"][0]["text"]["text"]
    assert heading.endswith(f"|#{incident.number} {shown}>*")  # inside our own link to the incident
    assert "<!channel>" not in json.dumps(post.data) and "<https://evil" not in json.dumps(post.data)


@pytest.mark.django_db
def test_follow_up_alerts_go_into_the_thread(fake_slack, service):
    link = channel_link(service)
    incident = IncidentFactory(service=service, alert_count=1)
    outbox.deliver(notification(incident, "slack", target=f"slack-channel:{link.pk}").pk)
    Incident.objects.filter(pk=incident.pk).update(alert_count=5)

    assert slack.post_followups(incident.pk) == 1
    assert slack.post_followups(incident.pk) == 0  # nothing new since

    root, reply = fake_slack.calls("chat.postMessage")
    assert reply.data["thread_ts"] == root.data.get("ts", SlackMessage.objects.get().ts)
    assert reply.data["text"].startswith("4 more alerts (5 in all)")


@pytest.mark.django_db
def test_slack_429_is_retried_after_its_retry_after(fake_slack, service):
    from datetime import UTC, datetime, timedelta

    link = channel_link(service)
    fake_slack.fail("chat.postMessage", 429, headers={"Retry-After": "3"}, body={"ok": False, "error": "ratelimited"})
    n = notification(IncidentFactory(service=service), "slack", target=f"slack-channel:{link.pk}")
    at = datetime(2027, 1, 1, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        assert outbox.deliver(n.pk) == "retry"
    n.refresh_from_db()
    assert n.next_attempt_at == at + timedelta(seconds=3) and "429" in n.last_error
    assert not SlackMessage.objects.filter(incident=n.incident).exclude(ts="").exists()


@pytest.mark.django_db
def test_slack_api_error_is_final(fake_slack, service):
    link = channel_link(service)
    fake_slack.fail("chat.postMessage", 200, body={"ok": False, "error": "channel_not_found"})
    n = notification(IncidentFactory(service=service), "slack", target=f"slack-channel:{link.pk}")
    assert outbox.deliver(n.pk) == "failed"
    n.refresh_from_db()
    assert n.last_error == "slack: channel_not_found"


# ----- buttons -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_signed_button_press_acknowledges_as_the_mapped_user(client, fake_slack, service, responder):
    workspace()
    incident = IncidentFactory(service=service)
    fake_slack.emails[SLACK_USER] = responder.email

    response = press(client, block_actions(incident.pk))

    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by == responder
    assert incident.audit_entries.get(verb="incident.acknowledged").actor_label == "rita (Slack)"
    # Mapped by users.info's e-mail once; the link is kept for next time.
    assert ContactMethod.objects.get(kind="slack", address=SLACK_USER).user == responder
    assert len(fake_slack.calls("users.info")) == 1

    # Resolve, by the same user: no second users.info.
    assert press(client, block_actions(incident.pk, "incident_resolve")).status_code == 200
    incident.refresh_from_db()
    assert incident.status == "resolved" and len(fake_slack.calls("users.info")) == 1


@pytest.mark.django_db
@pytest.mark.parametrize("forgery", ["wrong secret", "stale", "tampered", "unknown workspace", "unsigned"])
def test_bad_or_stale_signature_is_401_and_changes_nothing(client, fake_slack, service, responder, forgery):
    workspace()
    incident = IncidentFactory(service=service)
    ContactMethod.objects.create(user=responder, kind="slack", address=SLACK_USER)
    payload = block_actions(incident.pk)
    if forgery == "wrong secret":
        response = press(client, payload, secret="not-the-secret")
    elif forgery == "stale":
        response = press(client, payload, timestamp=int(time.time()) - 6 * 60)
    elif forgery == "tampered":
        body = urlencode({"payload": json.dumps(payload)})
        timestamp = str(int(time.time()))
        signature = "v0=" + hmac.new(SIGNING_SECRET.encode(), f"v0:{timestamp}:{body}".encode(), hashlib.sha256).hexdigest()
        payload["actions"][0]["action_id"] = "incident_resolve"
        response = client.post(
            EVENTS, urlencode({"payload": json.dumps(payload)}), content_type="application/x-www-form-urlencoded",
            HTTP_X_SLACK_REQUEST_TIMESTAMP=timestamp, HTTP_X_SLACK_SIGNATURE=signature,
        )
    elif forgery == "unknown workspace":
        payload["team"]["id"] = "T999"
        response = press(client, payload)
    else:
        response = client.post(EVENTS, urlencode({"payload": json.dumps(payload)}), content_type="application/x-www-form-urlencoded")

    assert response.status_code == 401
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert not incident.audit_entries.exclude(verb="incident.triggered").exists()
    assert fake_slack.requests == []


@pytest.mark.django_db
def test_the_recorded_request_and_its_signature_verify(client, fake_slack):
    """The captured body and signature from the documented vectors (tests/fixtures), at their own time: bolt
    accepts them; the Slack user is not linked to anyone, so they are told how to link."""
    workspace()
    vector = json.loads((PAYLOADS / "slack_signature_test_vectors.json").read_text())["block_actions_vector"]
    body = (PAYLOADS / vector["raw_body_file"]).read_bytes().strip()
    with time_machine.travel(int(vector["x_slack_request_timestamp"]) + 10, tick=False):
        response = client.post(
            EVENTS, body, content_type="application/x-www-form-urlencoded",
            HTTP_X_SLACK_REQUEST_TIMESTAMP=vector["x_slack_request_timestamp"],
            HTTP_X_SLACK_SIGNATURE=vector["expected_x_slack_signature"],
        )
    assert response.status_code == 200, response.content
    [ephemeral] = fake_slack.calls("chat.postEphemeral")
    assert ephemeral.data["user"] == "U0123ABCD45" and ephemeral.data["channel"] == "C0123INCID"
    assert "U0123ABCD45" in ephemeral.data["text"]


def link_in(text: str) -> str:
    """The path of the portal link in an ephemeral message (Slack mrkdwn: <url|label>)."""
    match = re.search(r"<(https?://[^|>]+)\|", text)
    assert match, text
    return urlsplit(match.group(1)).path


@pytest.mark.django_db
def test_an_unlinked_user_follows_the_link_and_the_next_press_acknowledges(client, fake_slack, service, responder):
    workspace()
    incident = IncidentFactory(service=service)

    assert press(client, block_actions(incident.pk)).status_code == 200
    [ephemeral] = fake_slack.calls("chat.postEphemeral")
    assert ephemeral.data["user"] == SLACK_USER and "/integrations/slack/link/" in ephemeral.data["text"]
    path = link_in(ephemeral.data["text"])
    incident.refresh_from_db()
    assert incident.status == "triggered"

    assert client.get(path).status_code == 302  # log in first
    client.force_login(responder)
    page = client.get(path).content.decode()
    assert f"Link Slack user <code>{SLACK_USER}</code> of workspace Example Corp" in page and "rita" in page
    assert not ContactMethod.objects.filter(address=SLACK_USER).exists()  # only the POST links

    response = client.post(path)
    assert response.status_code == 200 and "is now linked to you" in response.content.decode()
    link = ContactMethod.objects.get(kind="slack", address=SLACK_USER)
    assert link.user == responder and link.verified
    audit = AuditEntry.objects.get(verb="contact.slack_linked")
    assert audit.actor == responder and audit.data["slack_user"] == SLACK_USER and audit.data["workspace"] == TEAM_ID

    assert press(client, block_actions(incident.pk)).status_code == 200
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by == responder
    assert len(fake_slack.calls("chat.postEphemeral")) == 1  # no second "who are you"


@pytest.mark.django_db
@pytest.mark.parametrize("forgery", ["tampered", "expired", "another user's id"])
def test_a_tampered_or_expired_link_is_400_and_links_nobody(client, fake_slack, service, responder, forgery):
    workspace()
    incident = IncidentFactory(service=service)
    press(client, block_actions(incident.pk))
    path = link_in(fake_slack.calls("chat.postEphemeral")[0].data["text"])
    client.force_login(responder)
    token = path.rsplit("/", 1)[1]
    if forgery == "tampered":
        path = path[:-3] + ("xyz" if not path.endswith("xyz") else "abc")
    elif forgery == "another user's id":
        # A token naming someone else, signed with anything but our key.
        forged = signing.dumps({"team": TEAM_ID, "user": "UOTHER"}, key="guessed", salt=slack_linking.SALT)
        path = path.replace(token, forged)

    with time_machine.travel(time.time() + (3601 if forgery == "expired" else 0)):
        response = client.post(path)

    assert response.status_code == 400
    expected = "has expired" if forgery == "expired" else "is not valid"
    assert expected in response.content.decode()
    assert not ContactMethod.objects.filter(kind="slack").exists()
    assert not AuditEntry.objects.filter(verb="contact.slack_linked").exists()


@pytest.mark.django_db
def test_refused_transition_and_viewer_are_told_ephemerally(client, fake_slack, service, responder):
    workspace()
    viewer = MembershipFactory(team=service.team, user=UserFactory(username="vera"), role="viewer").user
    ContactMethod.objects.create(user=responder, kind="slack", address=SLACK_USER)
    ContactMethod.objects.create(user=viewer, kind="slack", address="UVIEWER")
    incident = IncidentFactory(service=service, status="resolved")

    assert press(client, block_actions(incident.pk)).status_code == 200
    assert press(client, block_actions(incident.pk, user="UVIEWER")).status_code == 200
    texts = [r.data["text"] for r in fake_slack.calls("chat.postEphemeral")]
    assert "only a triggered incident can be acknowledged" in texts[0]
    assert "viewer" in texts[1]


# ----- slash command -------------------------------------------------------------------------


@pytest.mark.django_db
def test_slash_command_lists_open_incidents_and_declares_one(client, fake_slack, service, responder):
    workspace()
    ContactMethod.objects.create(user=responder, kind="slack", address=SLACK_USER)
    open_one = IncidentFactory(service=service, title="Queue backlog")
    IncidentFactory(service=service, title="Old thing", status="resolved")
    form = {"team_id": TEAM_ID, "user_id": SLACK_USER, "channel_id": "C0123INCID", "command": "/incident", "text": ""}

    listing = signed_post(client, urlencode(form))
    assert listing.status_code == 200
    text = listing.content.decode()
    assert f"#{open_one.number} [medium] Queue backlog" in text and "Old thing" not in text

    declared = signed_post(client, urlencode({**form, "text": f"declare {service.slug} Payments are failing"}))
    assert declared.status_code == 200
    incident = Incident.objects.get(title="Payments are failing")
    assert incident.service == service and incident.status == "triggered"
    assert f"#{incident.number}" in fake_slack.calls("chat.postEphemeral")[-1].data["text"]


@pytest.mark.django_db
def test_escalate_restarts_escalation_of_an_acknowledged_incident(client, fake_slack, service, responder):
    workspace()
    ContactMethod.objects.create(user=responder, kind="slack", address=SLACK_USER)
    incident = IncidentFactory(service=service)
    services.acknowledge(incident, actor=Actor.of(responder))

    assert press(client, block_actions(incident.pk, "incident_escalate")).status_code == 200
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert incident.audit_entries.filter(verb="incident.unacknowledged", data__reason="escalated").exists()

    # Triggered, and no policy to run: the person is told so.
    assert press(client, block_actions(incident.pk, "incident_escalate")).status_code == 200
    assert "no escalation left to run" in fake_slack.calls("chat.postEphemeral")[-1].data["text"]


@pytest.mark.django_db
def test_escalate_fires_the_next_level_now_and_snooze_quiets_for_an_hour(client, fake_slack, service, responder):
    from datetime import timedelta

    from django.utils import timezone

    from apps.escalation import services as escalation
    from apps.escalation.models import EscalationPolicy, EscalationRule, EscalationState

    workspace()
    ContactMethod.objects.create(user=responder, kind="slack", address=SLACK_USER)
    policy = EscalationPolicy.objects.create(name="p", service=service)
    EscalationRule.objects.create(policy=policy, delay_minutes=10, channels=["email"]).users.add(responder)
    incident = IncidentFactory(service=service)
    escalation.start(incident)
    assert EscalationState.objects.get(incident=incident).next_at > timezone.now() + timedelta(minutes=9)

    assert press(client, block_actions(incident.pk, "incident_escalate")).status_code == 200
    assert EscalationState.objects.get(incident=incident).next_at <= timezone.now()
    assert incident.audit_entries.filter(verb="incident.escalated").exists()

    snooze = block_actions(incident.pk, "incident_snooze")
    snooze["actions"][0] = {
        "type": "static_select", "action_id": "incident_snooze", "block_id": f"incident-{incident.pk}",
        "selected_option": {"text": {"type": "plain_text", "text": "Snooze 1h"}, "value": f"{incident.pk}:60"},
        "action_ts": "1764089903.000100",
    }
    assert press(client, snooze).status_code == 200
    incident.refresh_from_db()
    state = EscalationState.objects.get(incident=incident)
    assert incident.status == "acknowledged" and state.status == "acknowledged"
    assert timedelta(minutes=59) < state.next_at - timezone.now() <= timedelta(minutes=60)
    assert incident.audit_entries.filter(verb="incident.snoozed", data__minutes=60).exists()
    assert "Snoozed for 60 minutes" in fake_slack.calls("chat.postEphemeral")[-1].data["text"]
