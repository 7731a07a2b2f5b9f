"""MATRIX entries of the configuration API's teams, members and users (apps/accounts/api.py)
and of what goes out: contact methods, notification rules, webhooks, Slack channel links
(apps/notifications/api.py).  Viewers read; team admins write; creating a team takes an
organisation admin."""

from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.models import ApiKey, Membership
from apps.notifications.models import (
    ContactMethod,
    NotificationRule,
    SlackChannelLink,
    SlackWorkspace,
    WebhookEndpoint,
)
from tests.factories import TeamFactory
from tests.test_access_matrix import Entry, row

S = ApiKey.Scope
READ = row(401, 200, 200, 200, 404, 200, 200, 403)  # one of team A's
LIST = row(401, 200, 200, 200, 200, 200, 200, 403)  # each caller's own teams'
CHANGE = row(401, 403, 403, "ok", 403, "ok", "ok", 403)  # team admins
ORG_ADMINS = row(401, 403, 403, 403, 403, "ok", 403, 403)  # a key of team A is no organisation admin


def extend(world):
    """Team C, which team A's admin also administers, with carol (to be added to team A);
    the viewer's contact method and rule; a webhook and a Slack channel of service a."""
    team_c = TeamFactory(slug="team-c")
    Membership.objects.create(user=world["users"]["team_admin"], team=team_c, role="admin")
    world["carol"] = get_user_model().objects.create_user(username="carol")
    Membership.objects.create(user=world["carol"], team=team_c, role="responder")
    viewer = world["users"]["viewer"]
    world["viewer_membership"] = Membership.objects.get(user=viewer, team=world["team"])
    world["contact_method"] = ContactMethod.objects.create(user=viewer, kind="email", address="viewer@example.org")
    world["notification_rule"] = NotificationRule.objects.create(user=viewer, kind="email")
    world["webhook"] = WebhookEndpoint.objects.create(name="hook", url="https://93.184.215.14/hook", service=world["service"])
    workspace = SlackWorkspace.objects.create(team_id="T0MATRIX", name="matrix")
    world["slack_workspace"] = workspace
    world["slack_channel"] = SlackChannelLink.objects.create(service=world["service"], workspace=workspace, channel_id="C0A")


A, N = "accounts-api", "notifications-api"


def of_viewer(name, *rest):
    return lambda w: reverse(name, args=[w["users"]["viewer"].pk, *(w[r].pk for r in rest)])


ENTRIES = {
    f"{A}:team-list": Entry("get", lambda w: reverse(f"{A}:team-list"), LIST, scope=S.TEAMS_READ),
    f"{A}:team-list#create": Entry("post", lambda w: reverse(f"{A}:team-list"), ORG_ADMINS,
                                   lambda w: {"name": "New", "slug": "new", "external_id": "t-new"}, S.TEAMS_WRITE),
    f"{A}:team-detail": Entry("get", lambda w: reverse(f"{A}:team-detail", args=[w["team"].pk]), READ, scope=S.TEAMS_READ),
    f"{A}:member-list": Entry("get", lambda w: reverse(f"{A}:member-list", args=[w["team"].pk]), READ, scope=S.TEAMS_READ),
    f"{A}:member-list#create": Entry("post", lambda w: reverse(f"{A}:member-list", args=[w["team"].pk]),
                                     row(401, 403, 403, "ok", 403, "ok", 400, 403),  # carol is of team C, not the key's
                                     lambda w: {"user": "carol", "role": "viewer"}, S.TEAMS_WRITE),
    f"{A}:member-detail": Entry("get", lambda w: reverse(f"{A}:member-detail", args=[w["team"].pk, w["viewer_membership"].pk]),
                                READ, scope=S.TEAMS_READ),
    f"{A}:user-list": Entry("get", lambda w: reverse(f"{A}:user-list"), LIST, scope=S.USERS_READ),
    f"{A}:user-list#create": Entry("post", lambda w: reverse(f"{A}:user-list"), CHANGE,
                                   lambda w: {"username": "newbie", "name": "New Bie", "team": "team-a"}, S.USERS_WRITE),
    f"{A}:user-detail": Entry("get", of_viewer(f"{A}:user-detail"), READ, scope=S.USERS_READ),
    f"{N}:contact-method-list": Entry("get", of_viewer(f"{N}:contact-method-list"), READ, scope=S.USERS_READ),
    f"{N}:contact-method-list#create": Entry("post", of_viewer(f"{N}:contact-method-list"), CHANGE,
                                             lambda w: {"kind": "sms", "address": "+4915112345678"}, S.USERS_WRITE),
    f"{N}:contact-method-detail": Entry("get", of_viewer(f"{N}:contact-method-detail", "contact_method"), READ, scope=S.USERS_READ),
    f"{N}:notification-rule-list": Entry("get", of_viewer(f"{N}:notification-rule-list"), READ, scope=S.USERS_READ),
    f"{N}:notification-rule-list#create": Entry("post", of_viewer(f"{N}:notification-rule-list"), CHANGE,
                                                lambda w: {"kind": "email", "delay_minutes": 5}, S.USERS_WRITE),
    f"{N}:notification-rule-detail": Entry("get", of_viewer(f"{N}:notification-rule-detail", "notification_rule"), READ,
                                           scope=S.USERS_READ),
    f"{N}:webhook-list": Entry("get", lambda w: reverse(f"{N}:webhook-list"), LIST, scope=S.NOTIFICATIONS_READ),
    f"{N}:webhook-list#create": Entry("post", lambda w: reverse(f"{N}:webhook-list"), CHANGE,
                                      lambda w: {"name": "ops", "url": "https://93.184.215.14/ops", "service": "a"},
                                      S.NOTIFICATIONS_WRITE),
    f"{N}:webhook-detail": Entry("get", lambda w: reverse(f"{N}:webhook-detail", args=[w["webhook"].pk]), READ,
                                 scope=S.NOTIFICATIONS_READ),
    f"{N}:slack-channel-list": Entry("get", lambda w: reverse(f"{N}:slack-channel-list"), LIST, scope=S.NOTIFICATIONS_READ),
    f"{N}:slack-channel-list#create": Entry("post", lambda w: reverse(f"{N}:slack-channel-list"), CHANGE,
                                            lambda w: {"service": "a", "workspace": "T0MATRIX", "channel_id": "C0B"},
                                            S.NOTIFICATIONS_WRITE),
    f"{N}:slack-channel-detail": Entry("get", lambda w: reverse(f"{N}:slack-channel-detail", args=[w["slack_channel"].pk]),
                                       READ, scope=S.NOTIFICATIONS_READ),
}
