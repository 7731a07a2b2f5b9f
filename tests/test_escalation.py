"""Escalation: the severity matrix, the lifecycle hooks, the audit trail (time-machine)."""

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.contrib.auth import get_user_model

from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, Actor
from apps.escalation import engine, presets
from apps.escalation import services as escalation
from apps.escalation.models import EscalationPolicy, EscalationRule, EscalationState
from apps.incidents import services
from apps.incidents.events import AlertEvent
from apps.incidents.ingest import ingest
from apps.notifications.models import Notification
from apps.schedules.models import Layer, LayerMember, Override, Schedule

from .factories import IncidentFactory, MembershipFactory, ServiceFactory, TeamFactory


def person(username):
    """A user without a password (hashing one costs ~0.5 s here)."""
    return get_user_model().objects.create(username=username, email=f"{username}@example.org")

pytestmark = pytest.mark.django_db

MONDAY = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)  # a Monday, 10:00 UTC


@pytest.fixture
def world():
    """A team with a weekly schedule (alice, then erin), a secondary (bob) and two
    more members (carol, dave); the severity matrix on its service: level 1 the
    schedule's on-call, level 2 bob, level 3 the whole team."""
    team = TeamFactory()
    users = {name: person(name) for name in ("alice", "bob", "carol", "dave", "erin", "frank")}
    for name in ("carol", "dave"):
        MembershipFactory(team=team, user=users[name])
    schedule = Schedule.objects.create(name="Primary", team=team, time_zone="UTC")
    layer = Layer.objects.create(
        schedule=schedule, name="weekly", shift_length=1, shift_unit="weeks", handoff_time=time(9), start_date=date(2024, 12, 30)
    )
    LayerMember.objects.create(layer=layer, user=users["alice"], position=0)
    LayerMember.objects.create(layer=layer, user=users["erin"], position=1)
    service = ServiceFactory(team=team)
    policies = presets.severity_matrix(
        service, [{"schedules": [schedule]}, {"users": [users["bob"]]}, {"teams": [team]}]
    )
    return {"service": service, "schedule": schedule, "policies": policies, "team": team, **users}


def open_incident(world, severity, **kw):
    incident = IncidentFactory(service=world["service"], severity=severity, **kw)
    escalation.start(incident)
    return incident


def sent(incident, **filters):
    """(username, channel) of the incident's notifications, in order."""
    rows = Notification.objects.filter(incident=incident, **filters).order_by("id")
    return [(n.recipient.username, n.channel) for n in rows]


def state_of(incident):
    return EscalationState.objects.get(incident=incident)


# --- the severity matrix -------------------------------------------------------------


def test_critical_pages_every_level_by_phone_slack_email_in_3_minute_steps(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "critical")
        assert engine.tick() == 1
        assert sent(incident) == [("alice", "voice"), ("alice", "slack"), ("alice", "email")]
        assert state_of(incident).next_at == MONDAY + timedelta(minutes=3)

        clock.shift(timedelta(minutes=2, seconds=59))
        assert engine.tick() == 0
        clock.shift(timedelta(seconds=1))
        assert engine.tick() == 1
        assert sent(incident)[3:] == [("bob", "voice"), ("bob", "slack"), ("bob", "email")]

        clock.shift(timedelta(minutes=3))
        engine.tick()
        assert sorted(sent(incident)[6:]) == sorted(
            [(u, c) for u in ("carol", "dave") for c in ("voice", "slack", "email")]
        )
        state = state_of(incident)
        assert (state.status, state.next_at) == ("exhausted", None)
        clock.shift(timedelta(hours=1))
        assert engine.tick() == 0
        assert len(sent(incident)) == 12


def test_high_uses_slack_and_email_in_10_minute_steps(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "high")
        engine.tick()
        assert sent(incident) == [("alice", "slack"), ("alice", "email")]
        clock.shift(timedelta(minutes=9, seconds=59))
        engine.tick()
        assert len(sent(incident)) == 2
        clock.shift(timedelta(seconds=1))
        engine.tick()
        assert sent(incident)[2:] == [("bob", "slack"), ("bob", "email")]


def test_medium_is_slack_only_in_30_minute_steps_within_business_hours(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "medium")
        engine.tick()
        assert sent(incident) == [("alice", "slack")]
        clock.shift(timedelta(minutes=29))
        engine.tick()
        assert len(sent(incident)) == 1
        clock.shift(timedelta(minutes=1))
        engine.tick()
        assert sent(incident) == [("alice", "slack"), ("bob", "slack")]


def test_medium_outside_business_hours_waits_for_the_next_business_morning_across_dst(world):
    policy = world["policies"]["medium"]
    policy.time_zone = "Europe/Berlin"
    policy.save()
    berlin = ZoneInfo("Europe/Berlin")
    saturday = datetime(2025, 3, 29, 12, tzinfo=berlin)  # the weekend clocks go forward
    monday_nine = datetime(2025, 3, 31, 9, tzinfo=berlin)  # 07:00 UTC (CEST), not 08:00
    with time_machine.travel(saturday, tick=False) as clock:
        incident = open_incident(world, "medium")
        engine.tick()
        assert sent(incident) == []
        state = state_of(incident)
        assert (state.level, state.next_at) == (0, monday_nine)
        deferred = AuditEntry.objects.get(incident=incident, verb="escalation.deferred")
        assert deferred.data["why"] == "outside the policy's business hours"

        clock.move_to(monday_nine - timedelta(seconds=1))
        assert engine.tick() == 0
        clock.move_to(monday_nine)
        engine.tick()
        assert sent(incident) == [("alice", "slack")]
        assert state_of(incident).next_at == monday_nine + timedelta(minutes=30)
        # A level falling due after 17:00 waits for Tuesday 09:00.
        evening = datetime(2025, 3, 31, 17, 20, tzinfo=berlin)
        EscalationState.objects.filter(incident=incident).update(next_at=evening)
        clock.move_to(evening)
        engine.tick()
        assert sent(incident) == [("alice", "slack")]
        assert state_of(incident).next_at == datetime(2025, 4, 1, 9, tzinfo=berlin)


def test_low_sends_one_email_digest_entry_and_never_escalates(world):
    actor = Actor.of(world["alice"])
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "low")
        engine.tick()
        rows = list(Notification.objects.filter(incident=incident))
        assert [(n.recipient.username, n.channel, n.reason["digest"]) for n in rows] == [("alice", "email", True)]
        # It waits for the daily digest: 08:00 UTC the next morning (MONDAY is 10:00).
        assert rows[0].next_attempt_at == datetime(2025, 6, 3, 8, tzinfo=UTC)
        assert state_of(incident).status == "exhausted"
        # Even an acknowledge / un-acknowledge round (a restart) sends no second one.
        services.acknowledge(incident, actor=actor)
        services.unacknowledge(incident, actor=actor)
        clock.shift(timedelta(hours=2))
        engine.tick()
        assert Notification.objects.filter(incident=incident).count() == 1


def test_info_has_no_policy_and_sends_nothing(world):
    with time_machine.travel(MONDAY, tick=False):
        incident = open_incident(world, "info")
        assert not EscalationState.objects.filter(incident=incident).exists()
        assert engine.tick() == 0
        assert sent(incident) == []


# --- lifecycle -----------------------------------------------------------------------


def test_ingest_starts_escalation_in_its_transaction(world):
    event = AlertEvent(
        title="GPU OOM", status="firing", severity="critical", dedup_key="gpu-oom",
        fingerprint="f" * 64, source="generic", payload={},
    )
    with time_machine.travel(MONDAY, tick=False):
        (result,) = ingest([event], service_id=world["service"].pk, integration_id=None, actor=SYSTEM)
        state = EscalationState.objects.get(incident_id=result.incident_id)
        assert (state.policy, state.level, state.next_at) == (world["policies"]["critical"], 0, MONDAY)
        ingest([event], service_id=world["service"].pk, integration_id=None, actor=SYSTEM)  # a repeat: no new state
        assert EscalationState.objects.count() == 1


def test_acknowledge_and_resolve_stop_escalation_at_once(world):
    actor = Actor.of(world["alice"])
    with time_machine.travel(MONDAY, tick=False) as clock:
        acked, resolved = open_incident(world, "critical"), open_incident(world, "critical")
        engine.tick()
        services.acknowledge(acked, actor=actor)
        services.resolve(resolved, actor=actor)
        assert (state_of(acked).status, state_of(acked).next_at) == ("acknowledged", None)
        assert (state_of(resolved).status, state_of(resolved).next_at) == ("stopped", None)
        clock.shift(timedelta(hours=1))
        assert engine.tick() == 0
        assert len(sent(acked)) == len(sent(resolved)) == 3


def test_unacknowledge_restarts_from_the_first_level_in_a_new_cycle(world):
    actor = Actor.of(world["alice"])
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "critical")
        engine.tick()
        services.acknowledge(incident, actor=actor)
        clock.shift(timedelta(minutes=5))
        services.unacknowledge(incident, actor=actor)
        incident.refresh_from_db()
        assert (incident.status, incident.acknowledged_at) == ("triggered", None)
        state = state_of(incident)
        assert (state.status, state.level, state.cycle) == ("active", 0, 1)
        engine.tick()
        keys = list(Notification.objects.filter(incident=incident).values_list("idempotency_key", flat=True))
        alice = world["alice"].pk
        assert keys[3:] == [f"esc:{incident.pk}:1:0:{alice}:{c}" for c in ("voice", "slack", "email")]
    assert [v for v in AuditEntry.objects.filter(incident=incident).values_list("verb", flat=True)] == [
        "escalation.notified", "incident.acknowledged", "incident.unacknowledged", "escalation.notified",
    ]
    with pytest.raises(services.TransitionError, match="only an acknowledged incident"):
        services.unacknowledge(incident, actor=actor)


def test_ack_timeout_puts_the_incident_back_to_triggered_and_escalates_again(world):
    policy = world["policies"]["high"]
    policy.ack_timeout_minutes = 30
    policy.save()
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "high")
        engine.tick()
        services.acknowledge(incident, actor=Actor.of(world["alice"]))
        assert state_of(incident).next_at == MONDAY + timedelta(minutes=30)
        clock.shift(timedelta(minutes=29))
        engine.tick()
        incident.refresh_from_db()
        assert incident.status == "acknowledged"
        clock.shift(timedelta(minutes=1))
        engine.tick()
        incident.refresh_from_db()
        assert incident.status == "triggered"
        assert sent(incident) == [("alice", "slack"), ("alice", "email")] * 2
        entry = AuditEntry.objects.get(incident=incident, verb="incident.unacknowledged")
        assert (entry.actor_label, entry.data) == ("escalation", {"reason": "acknowledgement timed out"})


def test_repeat_runs_the_policy_again_after_the_last_rule(world):
    policy = world["policies"]["critical"]
    policy.repeat = 1
    policy.save()
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "critical")
        for _ in range(3):
            engine.tick()
            clock.shift(timedelta(minutes=3))
        state = state_of(incident)
        assert (state.status, state.level, state.cycle, state.next_at) == ("active", 0, 1, MONDAY + timedelta(minutes=9))
        engine.tick()
        assert sent(incident)[-3:] == [("alice", "voice"), ("alice", "slack"), ("alice", "email")]
        for _ in range(3):
            clock.shift(timedelta(minutes=3))
            engine.tick()
        assert state_of(incident).status == "exhausted"
        assert len(sent(incident)) == 24


def test_firing_the_same_level_twice_notifies_once(world):
    with time_machine.travel(MONDAY, tick=False):
        incident = open_incident(world, "critical")
        engine.tick()
        # As if the tick's state update had been lost: the level is due again.
        EscalationState.objects.filter(incident=incident).update(level=0, next_at=MONDAY)
        engine.tick()
        assert len(sent(incident)) == 3


# --- targets, overrides, the audit trail ---------------------------------------------


def test_targets_are_resolved_through_the_schedule_at_that_moment(world):
    Override.objects.create(
        schedule=world["schedule"], user=world["frank"], start=MONDAY + timedelta(days=7), end=MONDAY + timedelta(days=8)
    )
    for at, expected in [
        (MONDAY, "alice"),
        (MONDAY + timedelta(days=6, hours=-1), "alice"),  # Sunday 09:00 UTC: still alice (handoff Monday 09:00)
        (MONDAY + timedelta(days=7), "frank"),  # override
        (MONDAY + timedelta(days=8), "erin"),  # next week's rotation
    ]:
        with time_machine.travel(at, tick=False):
            incident = open_incident(world, "high")
            engine.tick()
            assert sent(incident)[0][0] == expected


def test_timeline_records_who_on_which_channel_and_why(world):
    Override.objects.create(schedule=world["schedule"], user=world["frank"], start=MONDAY, end=MONDAY + timedelta(hours=1))
    with time_machine.travel(MONDAY, tick=False):
        incident = open_incident(world, "critical")
        engine.tick()
    entry = AuditEntry.objects.get(incident=incident, verb="escalation.notified")
    rule = EscalationRule.objects.get(policy=world["policies"]["critical"], position=0)
    assert entry.actor_label == "escalation"
    assert entry.data["level"] == 0 and entry.data["rule"] == rule.pk
    assert entry.data["channels"] == ["voice", "slack", "email"]
    (target,) = entry.data["targets"]
    assert target["username"] == "frank"
    assert target["why"] == [
        {"source": "schedule", "schedule": world["schedule"].pk, "schedule_name": "Primary", "via": "override",
         "override": Override.objects.get().pk}
    ]
    note = Notification.objects.filter(incident=incident).first()
    assert note.reason["why"] == target["why"] and note.reason["rule"] == rule.pk
    assert note.status == "pending" and note.next_attempt_at == MONDAY


def test_nobody_on_call_is_recorded_and_escalation_moves_on(world):
    policy = EscalationPolicy.objects.create(name="empty", service=ServiceFactory(), severities=[])
    rule = EscalationRule.objects.create(policy=policy, channels=["slack"])
    rule.schedules.add(Schedule.objects.create(name="Empty", team=world["team"]))
    with time_machine.travel(MONDAY, tick=False):
        incident = IncidentFactory(service=policy.service, severity="high")
        escalation.start(incident)
        engine.tick()
    entry = AuditEntry.objects.get(incident=incident)
    assert entry.data["targets"] == [] and "nobody" in entry.data["why"]
    assert state_of(incident).status == "exhausted"


@pytest.mark.parametrize(
    ("tz", "day"),
    [
        ("Europe/Berlin", date(2025, 3, 30)),  # spring forward
        ("Europe/Berlin", date(2025, 10, 26)),  # fall back
        ("America/New_York", date(2025, 3, 9)),
        ("America/New_York", date(2025, 11, 2)),
    ],
)
def test_pages_the_right_person_around_a_dst_change(world, tz, day):
    """A daily rotation handing off at 09:00 local: on the day the clocks change, the
    handoff still happens at 09:00 on the wall clock, and escalation pages accordingly."""
    zone = ZoneInfo(tz)
    schedule = Schedule.objects.create(name=f"Daily {tz}", team=world["team"], time_zone=tz)
    layer = Layer.objects.create(
        schedule=schedule, name="daily", shift_length=1, shift_unit="days", handoff_time=time(9),
        start_date=day - timedelta(days=2),
    )
    LayerMember.objects.create(layer=layer, user=world["alice"], position=0)
    LayerMember.objects.create(layer=layer, user=world["erin"], position=1)
    rule = EscalationRule.objects.get(policy=world["policies"]["high"], position=0)
    rule.schedules.set([schedule])
    # Shifts: day-2 alice, day-1 erin, day (the change) alice from 09:00 local.
    for at, expected in [
        (datetime.combine(day, time(8, 59), tzinfo=zone), "erin"),
        (datetime.combine(day, time(9), tzinfo=zone), "alice"),
        (datetime.combine(day + timedelta(days=1), time(8, 59), tzinfo=zone), "alice"),
    ]:
        with time_machine.travel(at, tick=False):
            incident = open_incident(world, "high")
            engine.tick()
            assert sent(incident)[0] == (expected, "slack"), at


def test_a_level_without_channels_reaches_each_person_by_their_own_rules():
    """PagerDuty's model: escalation picks the person, the person's notification rules
    pick the channels ("critical: SMS at once, call after 2 minutes; others: Slack")."""
    from apps.notifications.models import ContactMethod, NotificationRule

    service = ServiceFactory()
    alice, bob = person("alice"), person("bob")
    policy = EscalationPolicy.objects.create(name="people's own rules", service=service)
    rule = EscalationRule.objects.create(policy=policy, delay_minutes=0, channels=[])
    rule.users.add(alice, bob)
    ContactMethod.objects.create(user=alice, kind="sms", address="+4915100000001")
    ContactMethod.objects.create(user=alice, kind="voice", address="+4915100000001")
    ContactMethod.objects.create(user=alice, kind="slack", address="U0ALICE")
    NotificationRule.objects.create(user=alice, severities=["critical"], kind="sms", delay_minutes=0)
    NotificationRule.objects.create(user=alice, severities=["critical"], kind="voice", delay_minutes=2)
    NotificationRule.objects.create(user=alice, severities=["high", "medium", "low"], kind="slack", delay_minutes=0)
    ContactMethod.objects.create(user=bob, kind="email", address="bob@example.org")  # no rules: a default

    with time_machine.travel(MONDAY, tick=False):
        incident = open_incident({"service": service}, "critical")
        assert engine.tick() == 1

    rows = {(n.recipient.username, n.channel): n for n in Notification.objects.filter(incident=incident)}
    assert set(rows) == {("alice", "sms"), ("alice", "voice"), ("bob", "email")}
    assert rows["alice", "sms"].next_attempt_at == MONDAY
    assert rows["alice", "voice"].next_attempt_at == MONDAY + timedelta(minutes=2)
    assert rows["bob", "email"].next_attempt_at == MONDAY


def test_a_snoozed_incident_escalates_again_when_the_snooze_ends(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "critical")
        services.snooze(incident, minutes=60, actor=SYSTEM)
        incident.refresh_from_db()
        assert incident.status == "acknowledged"
        clock.shift(timedelta(minutes=59))
        assert engine.tick() == 0
        clock.shift(timedelta(minutes=2))
        engine.tick()
        incident.refresh_from_db()
        assert incident.status == "triggered"
        assert state_of(incident).status == "active"
    with pytest.raises(ValueError):
        services.snooze(incident, minutes=0, actor=SYSTEM)
