"""The access matrix's entries for schedules, overrides, escalation policies and who
is on call (apps/schedules/api.py, apps/escalation/api.py): team viewers read, team
admins write; another team's object is a 404 (a 400 naming the parameter on /oncall/)."""

from datetime import date, time, timedelta

from django.utils import timezone

from apps.accounts.models import ApiKey
from apps.escalation.models import EscalationPolicy, EscalationRule
from apps.schedules.models import Layer, LayerMember, Override
from tests.test_access_matrix import API_LIST, API_READ, CONFIG_CHANGE, Entry, row

S, P = ApiKey.Scope, "escalation-api"
ONCALL = row(401, 200, 200, 200, 400, 200, 200, 403)  # another team's schedule: as none, a 400


def extend(world):
    schedule, admin = world["schedule"], world["users"]["team_admin"]
    layer = Layer.objects.create(schedule=schedule, name="weekly", handoff_time=time(9), start_date=date(2024, 1, 1))
    LayerMember.objects.create(layer=layer, user=world["users"]["responder"], position=0)
    now = timezone.now()
    world["override"] = Override.objects.create(schedule=schedule, user=admin, start=now, end=now + timedelta(hours=1))
    policy = EscalationPolicy.objects.create(name="pages", service=world["service"])
    EscalationRule.objects.create(policy=policy, position=0, channels=["email"]).schedules.set([schedule])
    world["policy"] = policy


def _schedule_body(w):
    return {"name": "new", "team": "team-a", "time_zone": "UTC", "layers": [
        {"name": "daily", "shift_unit": "days", "handoff_time": "09:00", "start_date": "2025-01-01", "participants": ["responder"]}
    ]}


def _override_body(w):
    return {"schedule": w["schedule"].pk, "user": "responder", "start": "2030-01-01T00:00:00Z", "end": "2030-01-02T00:00:00Z"}


def _policy_body(w):
    return {"name": "new", "service": "a", "severities": ["high"],
            "rules": [{"delay_minutes": 0, "channels": ["email"], "users": ["responder"], "schedules": [w["schedule"].pk]}]}


ENTRIES = {
    "schedules-api:schedule-list": Entry("get", lambda w: "/api/v1/schedules/", API_LIST, scope=S.SCHEDULES_READ),
    "schedules-api:schedule-list#create": Entry("post", lambda w: "/api/v1/schedules/", CONFIG_CHANGE, _schedule_body, S.SCHEDULES_WRITE),
    "schedules-api:schedule-detail": Entry("get", lambda w: f"/api/v1/schedules/{w['schedule'].pk}/", API_READ, scope=S.SCHEDULES_READ),
    "schedules-api:override-list": Entry("get", lambda w: "/api/v1/overrides/", API_LIST, scope=S.SCHEDULES_READ),
    "schedules-api:override-list#create": Entry("post", lambda w: "/api/v1/overrides/", CONFIG_CHANGE, _override_body, S.SCHEDULES_WRITE),
    "schedules-api:override-detail": Entry("get", lambda w: f"/api/v1/overrides/{w['override'].pk}/", API_READ, scope=S.SCHEDULES_READ),
    f"{P}:policy-list": Entry("get", lambda w: "/api/v1/escalation-policies/", API_LIST, scope=S.POLICIES_READ),
    f"{P}:policy-list#create": Entry("post", lambda w: "/api/v1/escalation-policies/", CONFIG_CHANGE, _policy_body, S.POLICIES_WRITE),
    f"{P}:policy-detail": Entry("get", lambda w: f"/api/v1/escalation-policies/{w['policy'].pk}/", API_READ, scope=S.POLICIES_READ),
    f"{P}:oncall": Entry("get", lambda w: f"/api/v1/oncall/?schedule={w['schedule'].pk}", ONCALL, scope=S.SCHEDULES_READ),
    f"{P}:oncall#policy": Entry("get", lambda w: f"/api/v1/oncall/?policy={w['policy'].pk}", ONCALL, scope=S.POLICIES_READ),
    f"{P}:oncall#service": Entry("get", lambda w: "/api/v1/oncall/?service=a", ONCALL, scope=S.POLICIES_READ),
}
