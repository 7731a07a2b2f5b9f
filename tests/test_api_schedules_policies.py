"""The REST API for schedules, overrides, escalation policies and who is on call
(issue 17): what a config-as-code tool, a team admin's script or a viewer sees."""

from datetime import timedelta

import pytest
import time_machine
from django.test import Client

from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.escalation import selectors
from apps.escalation.models import EscalationPolicy
from apps.schedules import oncall
from apps.schedules import selectors as schedule_selectors
from apps.schedules.models import Layer, Override, Schedule

from .factories import MembershipFactory, TeamFactory
from .test_escalation import MONDAY, person, world  # noqa: F401  (world is a fixture)

pytestmark = pytest.mark.django_db

SCHEDULE = {
    "name": "Secondary", "time_zone": "Europe/Berlin", "external_id": "tf-secondary",
    "layers": [
        {"name": "weekdays", "external_id": "tf-weekdays", "level": 1, "shift_length": 1, "shift_unit": "days",
         "handoff_time": "09:00", "start_date": "2025-06-02", "restrict_start": "09:00", "restrict_end": "17:00",
         "restrict_weekdays": [0, 1, 2, 3, 4], "participants": ["bob", "alice"]},
        {"name": "base", "shift_length": 1, "shift_unit": "weeks", "handoff_time": "09:00", "start_date": "2025-06-02",
         "participants": ["erin"]},
    ],
}


@pytest.fixture
def team(world):
    """alice, bob, erin in the world's team (so its admins may name them); ada its admin,
    frank a viewer; another team with its own schedule."""
    for name in ("alice", "bob", "erin"):
        MembershipFactory(team=world["team"], user=world[name], role="responder")
    MembershipFactory(team=world["team"], user=world["frank"], role="viewer")
    ada = person("ada")
    MembershipFactory(team=world["team"], user=ada, role="admin")
    other = TeamFactory(slug="elsewhere")
    return {"slug": world["team"].slug, "ada": ada,
            "foreign": Schedule.objects.create(name="Theirs", team=other, external_id="theirs")}


def key_client(world, user, *scopes) -> Client:
    _, token = create_api_key(name="tf", scopes=list(scopes), created_by=user, team=world["team"])
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def session_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_key(world, team):
    return key_client(world, team["ada"], "schedules:read", "schedules:write", "policies:read", "policies:write")


def error(response) -> tuple[int, str]:
    return response.status_code, response.json().get("field")


# --- schedules -----------------------------------------------------------------------


def test_a_team_admins_key_creates_reads_changes_and_deletes_a_schedule_with_its_layers(world, team, admin_key):
    created = admin_key.post("/api/v1/schedules/", {**SCHEDULE, "team": team["slug"]}, content_type="application/json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert [(l["name"], l["participants"]) for l in body["layers"]] == [("weekdays", ["bob", "alice"]), ("base", ["erin"])]
    assert body["layers"][0]["restrict_weekdays"] == [0, 1, 2, 3, 4] and "feed_token_hash" not in body
    schedule = Schedule.objects.get(pk=body["id"])
    # As the portal computes it: Monday 10:00 UTC is 12:00 in Berlin, within the weekday window: bob.
    assert oncall.who_is_on_call(schedule, MONDAY).user_id == world["bob"].pk
    assert AuditEntry.objects.filter(verb="schedule.created", data__external_id="tf-secondary").exists()

    found = admin_key.get("/api/v1/schedules/?external_id=tf-secondary").json()
    assert [s["id"] for s in found["results"]] == [schedule.pk]

    weekdays = Layer.objects.get(external_id="tf-weekdays")
    changed = admin_key.patch(f"/api/v1/schedules/{schedule.pk}/", {"layers": [
        {"external_id": "tf-weekdays", **{k: v for k, v in SCHEDULE["layers"][0].items() if k != "external_id"},
         "participants": ["alice", "bob"]},
    ]}, content_type="application/json")
    assert changed.status_code == 200, changed.json()
    assert [(l["id"], l["participants"]) for l in changed.json()["layers"]] == [(weekdays.pk, ["alice", "bob"])]
    assert not schedule.layers.filter(name="base").exists()  # left out: deleted
    assert AuditEntry.objects.filter(verb="schedule.changed", data__id=schedule.pk).exists()

    assert admin_key.delete(f"/api/v1/schedules/{schedule.pk}/").status_code == 204
    assert not Schedule.objects.filter(pk=schedule.pk).exists()
    assert AuditEntry.objects.filter(verb="schedule.deleted", data__id=schedule.pk).exists()


def test_a_signed_in_team_admin_changes_a_schedule_and_a_viewer_only_reads(world, team):
    admin = session_client(team["ada"])
    url = f"/api/v1/schedules/{world['schedule'].pk}/"
    assert admin.patch(url, {"name": "Primary on call"}, content_type="application/json").status_code == 200
    viewer = session_client(world["frank"])
    assert viewer.get(url).json()["name"] == "Primary on call"
    assert viewer.get(url).json()["layers"][0]["participants"] == ["alice", "erin"]
    assert viewer.patch(url, {"name": "mine"}, content_type="application/json").status_code == 403
    assert viewer.post("/api/v1/schedules/", {**SCHEDULE, "team": team["slug"]}, content_type="application/json").status_code == 403
    viewer_key = key_client(world, world["frank"], "schedules:read", "schedules:write")
    assert viewer_key.get(url).status_code == 200
    assert viewer_key.delete(url).status_code == 403
    assert key_client(world, team["ada"], "policies:read").get(url).status_code == 403  # not the scope


def test_another_teams_schedule_is_not_found_and_cannot_be_written_into(world, team, admin_key):
    assert admin_key.get(f"/api/v1/schedules/{team['foreign'].pk}/").status_code == 404
    assert admin_key.patch(f"/api/v1/schedules/{team['foreign'].pk}/", {"name": "x"}, content_type="application/json").status_code == 404
    assert "Theirs" not in str(admin_key.get("/api/v1/schedules/").json())
    moved = admin_key.patch(f"/api/v1/schedules/{world['schedule'].pk}/", {"team": "elsewhere"}, content_type="application/json")
    assert error(moved) == (400, "team")
    override = {"schedule": team["foreign"].pk, "user": "alice", "start": "2025-06-03T00:00:00Z", "end": "2025-06-04T00:00:00Z"}
    assert error(admin_key.post("/api/v1/overrides/", override, content_type="application/json")) == (400, "schedule")


@pytest.mark.parametrize("change, field", [
    ({"time_zone": "Mars/Olympus"}, "time_zone"),
    ({"name": ""}, "name"),
    ({"external_id": "theirs"}, "external_id"),  # unique per type
    ({"layers": [SCHEDULE["layers"][1], {**SCHEDULE["layers"][1], "handoff_time": "25:00"}]}, "layers.1.handoff_time"),
    ({"layers": [{**SCHEDULE["layers"][0], "restrict_end": None}]}, "layers.0.restrict_end"),
    ({"layers": [{**SCHEDULE["layers"][1], "shift_length": 0}]}, "layers.0.shift_length"),
    ({"layers": [{**SCHEDULE["layers"][1], "participants": ["erin", "nobody"]}]}, "layers.0.participants.1"),
    ({"layers": [{**SCHEDULE["layers"][1], "start_date": "0001-01-01"}]}, "layers.0.start_date"),
])
def test_bad_input_is_a_400_naming_the_field_and_changes_nothing(world, team, admin_key, change, field):
    url = f"/api/v1/schedules/{world['schedule'].pk}/"
    before = admin_key.get(url).json()
    response = admin_key.patch(url, change, content_type="application/json")
    assert error(response) == (400, field), response.json()
    assert admin_key.get(url).json() == before


def test_overrides_crud_and_their_validation(world, team, admin_key):
    body = {"schedule": world["schedule"].pk, "user": "bob", "start": "2025-06-03T00:00:00Z",
            "end": "2025-06-04T00:00:00Z", "external_id": "swap-1", "note": "swap"}
    created = admin_key.post("/api/v1/overrides/", body, content_type="application/json")
    assert created.status_code == 201, created.json()
    pk = created.json()["id"]
    assert AuditEntry.objects.filter(verb="override.created", data__external_id="swap-1").exists()
    assert [o["id"] for o in admin_key.get("/api/v1/overrides/?external_id=swap-1").json()["results"]] == [pk]
    assert error(admin_key.patch(f"/api/v1/overrides/{pk}/", {"end": "2025-06-02T00:00:00Z"},
                                 content_type="application/json")) == (400, "end")
    assert error(admin_key.patch(f"/api/v1/overrides/{pk}/", {"user": "nobody"}, content_type="application/json")) == (400, "user")
    viewer = session_client(world["frank"])
    assert viewer.get(f"/api/v1/overrides/{pk}/").json()["user"] == "bob"
    assert viewer.delete(f"/api/v1/overrides/{pk}/").status_code == 403
    assert admin_key.delete(f"/api/v1/overrides/{pk}/").status_code == 204
    assert not Override.objects.filter(pk=pk).exists()


# --- escalation policies -------------------------------------------------------------


def test_policies_with_rules_and_severity_variants(world, team, admin_key):
    service = world["service"].slug
    listed = admin_key.get(f"/api/v1/escalation-policies/?service={service}&severity=critical").json()["results"]
    assert [p["name"] for p in listed] == ["critical pages"]
    assert [(r["position"], r["delay_minutes"], r["schedules"], r["users"], r["teams"]) for r in listed[0]["rules"]] == [
        (0, 0, [world["schedule"].pk], [], []), (1, 3, [], ["bob"], []), (2, 3, [], [], [team["slug"]]),
    ]
    body = {"name": "catch-all", "service": service, "severities": [], "external_id": "tf-policy", "repeat": 1,
            "rules": [{"delay_minutes": 0, "channels": ["sms"], "schedules": [world["schedule"].pk]},
                      {"delay_minutes": 5, "users": ["bob", "erin"], "external_id": "tf-rule-2"}]}
    created = admin_key.post("/api/v1/escalation-policies/", body, content_type="application/json")
    assert created.status_code == 201, created.json()
    policy = EscalationPolicy.objects.get(external_id="tf-policy")
    assert [(r.position, r.delay_minutes, sorted(u.username for u in r.users.all())) for r in policy.rules.all()] == [
        (0, 0, []), (1, 5, ["bob", "erin"]),
    ]
    assert AuditEntry.objects.filter(verb="policy.created", data__external_id="tf-policy").exists()
    rule_2 = policy.rules.get(external_id="tf-rule-2")
    changed = admin_key.patch(f"/api/v1/escalation-policies/{policy.pk}/", {"rules": [
        {"external_id": "tf-rule-2", "delay_minutes": 1, "users": ["bob"], "channels": ["email"]}]}, content_type="application/json")
    assert changed.status_code == 200, changed.json()
    assert [(r["id"], r["users"], r["position"]) for r in changed.json()["rules"]] == [(rule_2.pk, ["bob"], 0)]

    for change, field in (({"severities": ["urgent"]}, "severities.0"), ({"rules": [{"channels": ["pigeon"]}]}, "rules.0.channels.0"),
                          ({"rules": [{"delay_minutes": 10**6}]}, "rules.0.delay_minutes"), ({"service": "nope"}, "service"),
                          ({"time_zone": "Nowhere"}, "time_zone"), ({"rules": [{"schedules": [team["foreign"].pk]}]}, "rules.0.schedules.0")):
        response = admin_key.patch(f"/api/v1/escalation-policies/{policy.pk}/", change, content_type="application/json")
        assert error(response) == (400, field), (change, response.json())
    viewer = session_client(world["frank"])
    assert viewer.get(f"/api/v1/escalation-policies/{policy.pk}/").status_code == 200
    assert viewer.delete(f"/api/v1/escalation-policies/{policy.pk}/").status_code == 403
    assert admin_key.delete(f"/api/v1/escalation-policies/{policy.pk}/").status_code == 204
    assert AuditEntry.objects.filter(verb="policy.deleted", data__id=policy.pk).exists()


# --- who is on call ------------------------------------------------------------------


def portal_row(world, at):
    (row,) = [r for r in schedule_selectors.on_call_now(world["frank"], now=at) if r["schedule"] == world["schedule"]]
    return row


def test_oncall_for_a_schedule_answers_as_the_portal_at_several_moments_with_an_override(world, team):
    Override.objects.create(schedule=world["schedule"], user=world["bob"], start=MONDAY + timedelta(days=2),
                            end=MONDAY + timedelta(days=2, hours=6), external_id="ovr")
    client = key_client(world, world["frank"], "schedules:read")
    moments = [MONDAY, MONDAY + timedelta(days=2, hours=1), MONDAY + timedelta(days=7), MONDAY - timedelta(days=200)]
    for at in moments:
        with time_machine.travel(at, tick=False):
            by_default = client.get(f"/api/v1/oncall/?schedule={world['schedule'].pk}").json()
            portal = portal_row(world, at)
        at_param = client.get(f"/api/v1/oncall/?schedule={world['schedule'].pk}&at={at.isoformat().replace('+00:00', 'Z')}").json()
        assert by_default == at_param
        who = oncall.who_is_on_call(world["schedule"], at)
        on_call = at_param["schedule"]["on_call"]
        if portal["user"] is None:
            assert who is None and on_call is None
            continue
        assert on_call["user"] == portal["user"].username and on_call["user_id"] == who.user_id
        assert on_call["end"] == portal["until"].isoformat().replace("+00:00", "Z")
        assert on_call["source"] == ("override" if portal["source"] == "override" else "layer")
        assert at_param["schedule"]["next"]["user"] == portal["next_user"].username
    during = client.get(f"/api/v1/oncall/?schedule=Primary&at={(MONDAY + timedelta(days=2, hours=1)).isoformat()}")
    assert error(during) == (400, "schedule")  # a name is not an id
    during = client.get(f"/api/v1/oncall/?schedule={world['schedule'].pk}&at=2025-06-04T11:00:00 00:00").json()  # "+" unencoded
    assert during["schedule"]["on_call"] == {
        "user": "bob", "user_id": world["bob"].pk, "start": "2025-06-04T10:00:00Z", "end": "2025-06-04T16:00:00Z",
        "source": "override", "layer_id": None, "layer_name": None, "override_id": Override.objects.get(external_id="ovr").pk,
    }
    world["schedule"].external_id = "tf-primary"
    world["schedule"].save()
    assert client.get(f"/api/v1/oncall/?schedule=tf-primary&at=2025-06-02T10:00:00Z").json()["schedule"]["on_call"]["user"] == "alice"


def test_oncall_for_a_policy_and_a_service_lists_the_levels_as_dry_run(world, team):
    client = key_client(world, world["frank"], "policies:read")
    critical = world["policies"]["critical"]
    body = client.get(f"/api/v1/oncall/?policy={critical.pk}&at=2025-06-02T10:00:00Z").json()
    (plan,) = body["policies"]
    expected = selectors.dry_run(world["service"], MONDAY)[critical]
    assert [(l["level"], l["at"], [t["user"] for t in l["targets"]]) for l in plan["levels"]] == [
        (s.level, s.at.isoformat().replace("+00:00", "Z"), [u.username for u, _ in s.targets]) for s in expected
    ]
    assert [[t["user"] for t in l["targets"]] for l in plan["levels"]] == [["alice"], ["bob"], ["carol", "dave", "alice", "bob", "erin", "frank", "ada"]]
    assert plan["levels"][0]["targets"][0]["reasons"][0]["source"] == "schedule"
    assert plan["levels"][0]["channels"] == ["voice", "slack", "email"]
    service = client.get(f"/api/v1/oncall/?service={world['service'].slug}&at=2025-05-31T10:00:00Z").json()
    assert {p["name"] for p in service["policies"]} == {"critical pages", "high pages", "medium pages", "low pages"}
    medium = next(p for p in service["policies"] if p["name"] == "medium pages")
    assert medium["levels"][0]["deferred"] and medium["levels"][0]["at"] == "2025-06-02T09:00:00Z"
    assert key_client(world, world["frank"], "schedules:read").get(f"/api/v1/oncall/?policy={critical.pk}").status_code == 403


@pytest.mark.parametrize("query, field", [
    ("", "schedule"),
    ("schedule=1&policy=1", "schedule"),
    ("schedule={pk}&at=yesterday", "at"),
    ("schedule={pk}&at=2025-06-02T10:00:00", "at"),  # no offset
    ("schedule={pk}&at=0001-01-01T00:00:00Z", "at"),
    ("schedule=999999999999999999999", "schedule"),
    ("schedule={foreign}", "schedule"),  # another team's: as none
    ("policy=nope", "policy"),
    ("service=nope", "service"),
])
def test_oncall_bad_parameters_are_400s_naming_them(world, team, query, field):
    client = key_client(world, team["ada"], "schedules:read", "policies:read")
    response = client.get("/api/v1/oncall/?" + query.format(pk=world["schedule"].pk, foreign=team["foreign"].pk))
    assert error(response) == (400, field), response.json()
