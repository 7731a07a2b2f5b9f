"""Self-service linking of a Slack user to an account.

A button press by a Slack user we cannot map gets an ephemeral message with a
portal link carrying a signed, expiring token that names that Slack user and
workspace.  Only Slack shows the message, and only to that user, so whoever
follows the link (and is logged in) has shown they are that Slack user; the
signature stops anyone from editing the token to claim another one.
"""

from django.conf import settings
from django.core import signing
from django.db import transaction
from django.urls import reverse

from apps.audit.services import Actor, record

from apps.notifications.models import ContactMethod, SlackWorkspace

SALT = "integrations.slack-link"
MAX_AGE_SECONDS = 3600


class InvalidLink(Exception):
    """The token was tampered with, expired, or names a workspace we do not have."""


class AlreadyLinked(Exception):
    pass


def link_url(team_id: str, slack_user_id: str) -> str:
    token = signing.dumps({"team": team_id, "user": slack_user_id}, salt=SALT, compress=True)
    return settings.SITE_URL + reverse("slack-link", kwargs={"token": token})


def read_token(token: str) -> tuple[SlackWorkspace, str]:
    """The workspace and Slack user id a link token names."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE_SECONDS)
    except signing.SignatureExpired:
        raise InvalidLink("This link has expired (links are valid for an hour). Press the button in Slack again for a new one.") from None
    except signing.BadSignature:
        raise InvalidLink("This link is not valid: it was changed or is incomplete. Press the button in Slack again for a new one.") from None
    workspace = SlackWorkspace.objects.filter(team_id=data.get("team")).first()
    if workspace is None or not data.get("user"):
        raise InvalidLink("This link names a Slack workspace that is not connected any more.")
    return workspace, data["user"]


def link(user, workspace: SlackWorkspace, slack_user_id: str) -> ContactMethod:
    """Make `slack_user_id` a verified Slack contact of `user`, and audit it.  A Slack
    user already linked to someone else stays theirs (an admin can move it)."""
    with transaction.atomic():
        contact, created = ContactMethod.objects.select_for_update().get_or_create(
            kind=ContactMethod.Kind.SLACK, address=slack_user_id, defaults={"user": user, "verified": True}
        )
        if contact.user_id != user.pk:
            raise AlreadyLinked(f"Slack user {slack_user_id} is already linked to another account.")
        if created:
            record(
                "contact.slack_linked",
                actor=Actor.of(user),
                data={"slack_user": slack_user_id, "workspace": workspace.team_id, "how": "self-service link from Slack"},
            )
    return contact
