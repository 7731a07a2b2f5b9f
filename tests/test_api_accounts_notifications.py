"""The configuration API of teams, members, users with their contact methods and
notification rules, webhooks and Slack channel links (issue 17): what a caller sees."""

import json

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from apps.accounts.models import ApiKey, Membership, Team
from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.notifications.models import ContactMethod, NotificationRule, SlackChannelLink, SlackWorkspace, WebhookEndpoint

from .factories import MembershipFactory, ServiceFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

S = ApiKey.Scope
PUBLIC = "https://93.184.215.14"  # an address, so that no DNS is needed


@pytest.fixture
def team():
    return TeamFactory(name="Payments", slug="payments")


@pytest.fixture
def admin(team):
    return MembershipFactory(team=team, user=UserFactory(username="ada"), role="admin").user


@pytest.fixture
def viewer(team):
    return MembershipFactory(team=team, user=UserFactory(username="vic"), role="viewer").user


@pytest.fixture
def other():
    """Another team, its admin and a member."""
    team = TeamFactory(name="Search", slug="search")
    MembershipFactory(team=team, user=UserFactory(username="olga"), role="admin")
    MembershipFactory(team=team, user=UserFactory(username="otto"), role="responder")
    return team


def key_client(user, *scopes, team=None) -> Client:
    _, token = create_api_key(name="tf", scopes=scopes, created_by=user, team=team)
    return Client(headers={"Authorization": f"Bearer {token}"})


def session(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def send(client, method, path, body=None):
    return getattr(client, method)(path, data=json.dumps(body or {}), content_type="application/json")


def verbs():
    return list(AuditEntry.objects.exclude(verb__startswith="apikey.").order_by("id").values_list("verb", flat=True))


# Teams and members


def test_team_admin_reads_and_renames_their_team_but_only_organisation_admins_create_one(team, admin, other):
    api = key_client(admin, S.TEAMS_READ, S.TEAMS_WRITE)
    listed = api.get("/api/v1/teams/").json()
    assert [t["slug"] for t in listed["results"]] == ["payments"] and listed["count"] == 1

    changed = send(api, "patch", f"/api/v1/teams/{team.pk}/", {"name": "Payments & billing", "external_id": "PT1"})
    assert changed.status_code == 200 and changed.json()["name"] == "Payments & billing"
    assert api.get("/api/v1/teams/?external_id=PT1").json()["results"][0]["id"] == team.pk

    refused = send(api, "post", "/api/v1/teams/", {"name": "Mine", "slug": "mine"})
    assert refused.status_code == 403 and "organisation admin" in refused.json()["error"]
    assert send(api, "delete", f"/api/v1/teams/{team.pk}/").status_code == 403
    assert api.get(f"/api/v1/teams/{other.pk}/").status_code == 404

    org = session(get_user_model().objects.create_superuser(username="root"))
    created = send(org, "post", "/api/v1/teams/", {"name": "Mine", "slug": "mine", "external_id": "T9"})
    assert created.status_code == 201, created.content
    assert send(org, "post", "/api/v1/teams/", {"name": "Mine", "slug": "mine 2"}).json()["field"] == "name"
    assert send(org, "delete", f"/api/v1/teams/{created.json()['id']}/").status_code == 204
    ServiceFactory(team=team, slug="pay")
    in_use = send(org, "delete", f"/api/v1/teams/{team.pk}/")
    assert in_use.status_code == 409 and "services" in in_use.json()["error"]
    assert Team.objects.filter(pk=team.pk).exists()
    assert verbs() == ["team.changed", "team.created", "team.deleted"]
    assert AuditEntry.objects.get(verb="team.created").data["external_id"] == "T9"


def test_an_operators_key_of_every_team_creates_teams(db):
    _, token = create_api_key(name="ops", scopes=[S.TEAMS_WRITE])
    api = Client(headers={"Authorization": f"Bearer {token}"})
    assert send(api, "post", "/api/v1/teams/", {"name": "Ops", "slug": "ops"}).status_code == 201
    assert Team.objects.filter(slug="ops").exists()


def test_members_are_added_changed_and_removed_by_the_team_admin(team, admin, viewer, other):
    colleague = UserFactory(username="cleo")
    second = TeamFactory(slug="second")
    MembershipFactory(team=second, user=admin, role="admin")
    MembershipFactory(team=second, user=colleague)
    api = session(admin)
    members = f"/api/v1/teams/{team.pk}/members/"
    assert [m["user"] for m in api.get(members).json()["results"]] == ["ada", "vic"]

    added = send(api, "post", members, {"user": "cleo", "role": "responder", "external_id": "M1"})
    assert added.status_code == 201, added.content
    assert api.get(members + "?external_id=M1").json()["results"][0]["user"] == "cleo"
    assert send(api, "patch", f"{members}{added.json()['id']}/", {"role": "admin"}).json()["role"] == "admin"
    assert Membership.objects.get(team=team, user=colleague).role == "admin"

    twice = send(api, "post", members, {"user": "cleo"})
    assert twice.status_code == 400 and twice.json()["field"] == "user"
    # otto is of a team ada does not administer: as if he did not exist.
    stranger = send(api, "post", members, {"user": "otto"})
    assert stranger.status_code == 400 and stranger.json()["field"] == "user"
    bad_role = send(api, "patch", f"{members}{added.json()['id']}/", {"role": "boss"})
    assert bad_role.status_code == 400 and bad_role.json()["field"] == "role"

    assert send(api, "delete", f"{members}{added.json()['id']}/").status_code == 204
    assert not Membership.objects.filter(team=team, user=colleague).exists()
    assert verbs() == ["member.created", "member.changed", "member.deleted"]

    assert api.get(f"/api/v1/teams/{other.pk}/members/").status_code == 404
    assert send(api, "post", f"/api/v1/teams/{other.pk}/members/", {"user": "cleo"}).status_code == 404


def test_a_viewer_reads_members_but_cannot_change_them(team, admin, viewer):
    api = session(viewer)
    members = f"/api/v1/teams/{team.pk}/members/"
    assert api.get(members).status_code == 200
    assert send(api, "post", members, {"user": "ada"}).status_code == 403
    mine = Membership.objects.get(user=viewer)
    assert send(api, "patch", f"{members}{mine.pk}/", {"role": "admin"}).status_code == 403
    assert Membership.objects.get(user=viewer).role == "viewer"


# Users


def test_team_admin_creates_lists_updates_and_deletes_users_of_their_team(team, admin, viewer, other):
    api = key_client(admin, S.USERS_READ, S.USERS_WRITE)
    created = send(api, "post", "/api/v1/users/", {
        "username": "nina", "email": "nina@example.org", "name": "Nina  van Dijk", "team": "payments",
        "role": "viewer", "external_id": "PD-U1",
    })
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["name"] == "Nina van Dijk" and body["teams"] == {"payments": "viewer"} and body["external_id"] == "PD-U1"
    nina = get_user_model().objects.get(username="nina")
    assert (nina.first_name, nina.last_name) == ("Nina", "van Dijk") and not nina.has_usable_password()

    assert [u["username"] for u in api.get("/api/v1/users/").json()["results"]] == ["ada", "nina", "vic"]
    assert [u["username"] for u in api.get("/api/v1/users/?external_id=PD-U1").json()["results"]] == ["nina"]
    assert [u["username"] for u in api.get("/api/v1/users/?email=NINA@example.org").json()["results"]] == ["nina"]

    changed = send(api, "patch", f"/api/v1/users/{nina.pk}/", {"is_active": False, "email": "n@example.org"})
    assert changed.status_code == 200 and changed.json()["is_active"] is False
    assert changed.json()["external_id"] == "PD-U1"  # kept when not given
    nina.refresh_from_db()
    assert not nina.is_active and nina.email == "n@example.org"

    olga = get_user_model().objects.get(username="olga")
    assert api.get(f"/api/v1/users/{olga.pk}/").status_code == 404
    assert send(api, "delete", f"/api/v1/users/{nina.pk}/").status_code == 204
    assert verbs() == ["user.created", "user.changed", "user.deleted"]
    assert AuditEntry.objects.get(verb="user.created").data["external_id"] == "PD-U1"


@pytest.mark.parametrize("body, field", [
    ({"username": "bad name!", "team": "payments"}, "username"),
    ({"username": "ada", "team": "payments"}, "username"),
    ({"username": "x", "email": "not-an-address", "team": "payments"}, "email"),
    ({"username": "x", "team": "search"}, "team"),  # not a team the caller administers
    ({"username": "x"}, "team"),
    ({"username": "x", "team": "payments", "external_id": "taken"}, "external_id"),
])
def test_bad_users_are_400_naming_the_field(team, admin, viewer, other, body, field):
    from apps.accounts.models import UserIdentity

    UserIdentity.objects.create(user=viewer, external_id="taken")
    response = send(session(admin), "post", "/api/v1/users/", body)
    assert response.status_code == 400 and response.json()["field"] == field, response.content
    assert not get_user_model().objects.filter(username="x").exists()


def test_a_user_of_another_team_too_is_changed_only_by_an_admin_of_both(team, admin, viewer, other):
    MembershipFactory(team=other, user=viewer, role="viewer")
    api = session(admin)
    assert api.get(f"/api/v1/users/{viewer.pk}/").status_code == 200
    refused = send(api, "patch", f"/api/v1/users/{viewer.pk}/", {"email": "mine@example.org"})
    assert refused.status_code == 403 and "every team" in refused.json()["error"]
    boss = get_user_model().objects.create_superuser(username="boss")
    MembershipFactory(team=team, user=boss, role="viewer")
    assert send(api, "patch", f"/api/v1/users/{boss.pk}/", {"email": "mine@example.org"}).status_code == 403


def test_a_viewer_reads_users_but_cannot_change_them(team, admin, viewer):
    api = key_client(viewer, S.USERS_READ, S.USERS_WRITE)
    assert api.get(f"/api/v1/users/{admin.pk}/").json()["username"] == "ada"
    assert send(api, "patch", f"/api/v1/users/{admin.pk}/", {"name": "Eve"}).status_code == 403
    assert send(api, "post", "/api/v1/users/", {"username": "eve", "team": "payments"}).status_code == 403
    only_read = key_client(admin, S.USERS_READ)
    assert send(only_read, "patch", f"/api/v1/users/{viewer.pk}/", {"name": "V"}).json()["error"] == \
        "This API key lacks the users:write scope."


# Contact methods and notification rules


def test_contact_methods_and_rules_of_a_user(team, admin, viewer, other):
    api = session(admin)
    methods = f"/api/v1/users/{viewer.pk}/contact-methods/"
    created = send(api, "post", methods, {"kind": "sms", "address": "+4915112345678", "external_id": "CM1"})
    assert created.status_code == 201, created.content
    assert api.get(methods + "?external_id=CM1").json()["results"][0]["address"] == "+4915112345678"
    assert send(api, "patch", f"{methods}{created.json()['id']}/", {"verified": True}).json()["verified"] is True
    for body, field in (({"kind": "sms", "address": "0151 123"}, "address"), ({"kind": "email", "address": "nope"}, "address"),
                        ({"kind": "sms", "address": "+4915112345678"}, "address"), ({"kind": "fax", "address": "1"}, "kind"),
                        ({"kind": "slack", "address": "@vic"}, "address")):
        bad = send(api, "post", methods, body)
        assert bad.status_code == 400 and bad.json()["field"] == field, (body, bad.content)

    rules = f"/api/v1/users/{viewer.pk}/notification-rules/"
    rule = send(api, "post", rules, {"kind": "sms", "severities": ["critical"], "delay_minutes": 2})
    assert rule.status_code == 201, rule.content
    assert NotificationRule.objects.get(user=viewer).severities == ["critical"]
    for body, field in (({"kind": "sms", "delay_minutes": -1}, "delay_minutes"), ({"kind": "sms", "severities": ["urgent"]}, "severities")):
        bad = send(api, "post", rules, body)
        assert bad.status_code == 400 and bad.json()["field"].startswith(field), (body, bad.content)
    assert send(api, "delete", f"{rules}{rule.json()['id']}/").status_code == 204
    assert send(api, "delete", f"{methods}{created.json()['id']}/").status_code == 204
    assert verbs() == ["contact_method.created", "contact_method.changed", "notification_rule.created",
                       "notification_rule.deleted", "contact_method.deleted"]

    otto = get_user_model().objects.get(username="otto")
    assert api.get(f"/api/v1/users/{otto.pk}/contact-methods/").status_code == 404
    assert send(api, "post", f"/api/v1/users/{otto.pk}/contact-methods/", {"kind": "sms", "address": "+4915100000000"}).status_code == 404

    mine = ContactMethod.objects.create(user=admin, kind="email", address="ada@example.org")
    as_viewer = session(viewer)
    assert as_viewer.get(f"/api/v1/users/{admin.pk}/contact-methods/").json()["count"] == 1
    assert send(as_viewer, "patch", f"/api/v1/users/{admin.pk}/contact-methods/{mine.pk}/", {"address": "x@example.org"}).status_code == 403
    assert send(as_viewer, "post", f"/api/v1/users/{admin.pk}/contact-methods/", {"kind": "sms", "address": "+4915100000001"}).status_code == 403


# Webhooks and Slack channels


def test_webhook_secret_is_shown_once_and_private_urls_are_refused(team, admin, viewer, other, settings):
    service = ServiceFactory(team=team, slug="pay")
    api = key_client(admin, S.NOTIFICATIONS_READ, S.NOTIFICATIONS_WRITE)
    created = send(api, "post", "/api/v1/webhooks/", {"name": "ops", "url": f"{PUBLIC}/in", "service": "pay", "external_id": "W1"})
    assert created.status_code == 201, created.content
    secret = created.json()["secret"]
    webhook = WebhookEndpoint.objects.get(external_id="W1")
    assert secret.startswith("whsec_") and webhook.secret == secret and webhook.service == service
    shown = api.get(f"/api/v1/webhooks/{webhook.pk}/").json()
    assert shown["secret"] is None and shown["url"] == f"{PUBLIC}/in"
    assert [w["name"] for w in api.get("/api/v1/webhooks/?external_id=W1").json()["results"]] == ["ops"]

    refused = send(api, "post", "/api/v1/webhooks/", {"name": "db", "url": "http://127.0.0.1:5432/", "team": "payments"})
    assert refused.status_code == 400 and refused.json()["field"] == "url" and "loopback" in refused.json()["error"]
    moved = send(api, "patch", f"/api/v1/webhooks/{webhook.pk}/", {"url": "http://169.254.169.254/latest/"})
    assert moved.status_code == 400 and moved.json()["field"] == "url"
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    allowed = send(api, "post", "/api/v1/webhooks/", {"name": "db", "url": "http://127.0.0.1:8080/", "team": "payments"})
    assert allowed.status_code == 201, allowed.content

    neither = send(api, "post", "/api/v1/webhooks/", {"name": "x", "url": f"{PUBLIC}/x"})
    assert neither.status_code == 400 and neither.json()["field"] == "service"
    elsewhere = send(api, "post", "/api/v1/webhooks/", {"name": "x", "url": f"{PUBLIC}/x", "team": "search"})
    assert elsewhere.status_code == 400 and elsewhere.json()["field"] == "team"
    assert send(api, "delete", f"/api/v1/webhooks/{webhook.pk}/").status_code == 204
    assert verbs() == ["webhook.created", "webhook.created", "webhook.deleted"]

    theirs = WebhookEndpoint.objects.create(name="theirs", url=f"{PUBLIC}/s", team=other)
    assert api.get(f"/api/v1/webhooks/{theirs.pk}/").status_code == 404
    as_viewer = session(viewer)
    assert as_viewer.get("/api/v1/webhooks/").json()["count"] == 1
    assert send(as_viewer, "post", "/api/v1/webhooks/", {"name": "v", "url": f"{PUBLIC}/v", "team": "payments"}).status_code == 403


def test_slack_channel_links(team, admin, viewer, other):
    ServiceFactory(team=team, slug="pay")
    theirs = ServiceFactory(team=other, slug="find")
    workspace = SlackWorkspace.objects.create(team_id="T01", name="acme")
    api = session(admin)
    created = send(api, "post", "/api/v1/slack-channels/", {"service": "pay", "workspace": "T01", "channel_id": "C1", "external_id": "S1"})
    assert created.status_code == 201, created.content
    assert api.get("/api/v1/slack-channels/?external_id=S1").json()["results"][0]["channel_id"] == "C1"
    assert send(api, "patch", f"/api/v1/slack-channels/{created.json()['id']}/", {"is_active": False}).json()["is_active"] is False
    twice = send(api, "post", "/api/v1/slack-channels/", {"service": "pay", "workspace": "T01", "channel_id": "C1"})
    assert twice.status_code == 400 and twice.json()["field"] == "channel_id"
    nowhere = send(api, "post", "/api/v1/slack-channels/", {"service": "pay", "workspace": "T99", "channel_id": "C2"})
    assert nowhere.status_code == 400 and nowhere.json()["field"] == "workspace"
    elsewhere = send(api, "post", "/api/v1/slack-channels/", {"service": "find", "workspace": "T01", "channel_id": "C2"})
    assert elsewhere.status_code == 400 and elsewhere.json()["field"] == "service"
    link = SlackChannelLink.objects.create(service=theirs, workspace=workspace, channel_id="C9")
    assert api.get(f"/api/v1/slack-channels/{link.pk}/").status_code == 404
    assert send(session(viewer), "delete", f"/api/v1/slack-channels/{created.json()['id']}/").status_code == 403
    assert send(api, "delete", f"/api/v1/slack-channels/{created.json()['id']}/").status_code == 204
    assert verbs() == ["slack_channel.created", "slack_channel.changed", "slack_channel.deleted"]


def test_the_schema_lists_the_resources_with_summaries(client):
    paths = json.loads(client.get("/api/schema/?format=json").content)["paths"]
    for path in ("/api/v1/teams/", "/api/v1/teams/{team_pk}/members/", "/api/v1/users/", "/api/v1/users/{user_pk}/contact-methods/",
                 "/api/v1/users/{user_pk}/notification-rules/", "/api/v1/webhooks/", "/api/v1/slack-channels/"):
        assert paths[path]["get"]["summary"] and paths[path]["post"]["summary"], path
        assert any(p["name"] == "external_id" for p in paths[path]["get"]["parameters"]), path
