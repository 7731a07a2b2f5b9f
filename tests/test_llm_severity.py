"""The LLM's severity re-plans escalation: real anthropic SDK against the local fake,
real ingest, real escalation engine (time-machine)."""

from datetime import UTC, date, datetime, time, timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, Actor
from apps.escalation import engine, presets
from apps.escalation.models import EscalationState
from apps.incidents import services, settle
from apps.incidents.events import AlertEvent
from apps.incidents.ingest import ingest
from apps.incidents.models import ClassificationRule, Incident
from apps.incidents.triage import second_opinion
from apps.notifications.models import Notification
from apps.schedules.models import Layer, LayerMember, Schedule

from .factories import MembershipFactory, ServiceFactory, TeamFactory, UserFactory
from .fake_anthropic import tool_answer

pytestmark = pytest.mark.django_db

MONDAY = datetime(2025, 6, 2, 10, 0, tzinfo=UTC)


def verdict(severity):
    return tool_answer({"category": "availability", "severity": severity, "confidence": 0.9, "rationale": "probe down"})


@pytest.fixture
def world():
    """The severity matrix: level 1 the schedule's on-call (alice), level 2 bob."""
    team = TeamFactory()
    users = {name: get_user_model().objects.create(username=name, email=f"{name}@example.org") for name in ("alice", "bob")}
    schedule = Schedule.objects.create(name="Primary", team=team, time_zone="UTC")
    layer = Layer.objects.create(
        schedule=schedule, name="weekly", shift_length=1, shift_unit="weeks", handoff_time=time(9), start_date=date(2024, 12, 30)
    )
    LayerMember.objects.create(layer=layer, user=users["alice"], position=0)
    service = ServiceFactory(team=team)
    policies = presets.severity_matrix(service, [{"schedules": [schedule]}, {"users": [users["bob"]]}])
    return {"service": service, "policies": policies, **users}


def open_unsure(world, severity, *, from_sender=False) -> Incident:
    """An alert its sender gave no severity; the rules (an admin's, unsure of itself)
    judge it `severity`, which pages until the LLM says otherwise.  `from_sender`:
    the sender gave `severity` itself."""
    ClassificationRule.objects.update_or_create(
        name="probes", defaults={"pattern": "probe failing", "severity": severity, "confidence": 0.3},
    )
    event = AlertEvent(
        title="Blackbox probe failing for https://chat.example.org", status="firing", severity=severity,
        severity_from="severity 'x'" if from_sender else "", dedup_key="probe", fingerprint="e" * 64,
        source="generic", payload={},
    )
    (result,) = ingest([event], service_id=world["service"].pk, integration_id=None, actor=SYSTEM)
    settle.settle([result.incident_id])  # what the worker does right after ingest
    incident = Incident.objects.get(pk=result.incident_id)
    assert incident.severity == severity
    return incident


def sent(incident):
    return [(n.recipient.username, n.channel) for n in Notification.objects.filter(incident=incident).order_by("id")]


def test_an_llm_upgrade_changes_severity_and_pages_the_next_level_on_the_new_policy(world, anthropic_api):
    anthropic_api.script = [(200, verdict("critical"), {}, 0)]
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_unsure(world, "high")
        engine.tick()
        assert sent(incident) == [("alice", "slack"), ("alice", "email")]  # high: level 1 by Slack and e-mail

        assert second_opinion(incident.pk) == "classified"

        incident.refresh_from_db()
        assert (incident.severity, incident.classified_severity) == ("critical", "critical")
        change = AuditEntry.objects.get(incident=incident, verb="incident.severity_changed")
        assert (change.actor_label, change.data) == ("llm", {"from": "high", "to": "critical", "by": "llm"})
        state = EscalationState.objects.get(incident=incident)
        # Level 1 already paged stays paged; the critical policy's level 2 is next, 3 minutes on.
        assert (state.policy, state.level, state.next_at) == (world["policies"]["critical"], 1, MONDAY + timedelta(minutes=3))
        clock.shift(timedelta(minutes=3))
        engine.tick()
    assert sent(incident)[2:] == [("bob", "voice"), ("bob", "slack"), ("bob", "email")]


def test_an_llm_upgrade_of_a_deferred_medium_incident_pages_at_once(world, anthropic_api):
    anthropic_api.script = [(200, verdict("critical"), {}, 0)]
    saturday = MONDAY - timedelta(days=2)
    with time_machine.travel(saturday, tick=False):
        incident = open_unsure(world, "medium")
        engine.tick()
        assert sent(incident) == []  # medium waits for business hours
        second_opinion(incident.pk)
        engine.tick()
    assert sent(incident) == [("alice", "voice"), ("alice", "slack"), ("alice", "email")]


def test_an_llm_downgrade_to_info_stops_paging(world, anthropic_api):
    anthropic_api.script = [(200, verdict("info"), {}, 0)]
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_unsure(world, "high")
        engine.tick()
        second_opinion(incident.pk)
        clock.shift(timedelta(hours=1))
        engine.tick()
    assert Incident.objects.get(pk=incident.pk).severity == "info"
    assert EscalationState.objects.get(incident=incident).status == "stopped"
    assert len(sent(incident)) == 2  # level 1 only


def test_an_llm_upgrade_of_an_info_incident_starts_paging(world, anthropic_api):
    anthropic_api.script = [(200, verdict("high"), {}, 0)]
    with time_machine.travel(MONDAY, tick=False):
        incident = open_unsure(world, "info")
        assert not EscalationState.objects.filter(incident=incident).exists()
        second_opinion(incident.pk)
        engine.tick()
    assert sent(incident) == [("alice", "slack"), ("alice", "email")]


def test_the_llm_does_not_override_a_person_or_an_acknowledged_incident(world, anthropic_api):
    anthropic_api.script = [(200, verdict("critical"), {}, 0)] * 2
    with time_machine.travel(MONDAY, tick=False):
        by_hand = open_unsure(world, "high")
        services.change_severity(by_hand, severity="low", actor=Actor.of(world["bob"]))
        assert second_opinion(by_hand.pk) == "classified"
        by_hand.refresh_from_db()
        assert (by_hand.severity, by_hand.classified_severity) == ("low", "critical")  # shown as a suggestion only

        services.resolve(by_hand, actor=SYSTEM)
        acked = open_unsure(world, "high")
        services.acknowledge(acked, actor=Actor.of(world["alice"]))
        assert second_opinion(acked.pk) == "classified"
    assert Incident.objects.get(pk=acked.pk).severity == "high"
    assert list(AuditEntry.objects.filter(verb="incident.severity_changed").values_list("data__by", flat=True)) == ["person"]


def test_the_llm_does_not_override_the_senders_own_severity(world, anthropic_api):
    anthropic_api.script = [(200, verdict("critical"), {}, 0)]
    with time_machine.travel(MONDAY, tick=False):
        incident = open_unsure(world, "low", from_sender=True)
        engine.tick()
        assert second_opinion(incident.pk) == "classified"
        engine.tick()
    incident.refresh_from_db()
    assert (incident.severity, incident.severity_source, incident.classified_severity) == ("low", "sender", "critical")
    assert not AuditEntry.objects.filter(incident=incident, verb="incident.severity_changed").exists()
    assert sent(incident) == [("alice", "email")]  # low pages as low: the digest entry only


def test_change_severity_refuses_unknown_values_and_resolved_incidents(world):
    incident = open_unsure(world, "high")
    with pytest.raises(ValueError, match="Unknown severity"):
        services.change_severity(incident, severity="urgent", actor=SYSTEM)
    services.resolve(incident, actor=SYSTEM)
    with pytest.raises(services.TransitionError, match="resolved"):
        services.change_severity(incident, severity="low", actor=SYSTEM)


def test_a_responder_sets_the_severity_in_the_portal_and_the_llm_then_leaves_it(world, anthropic_api, client):
    anthropic_api.script = [(200, verdict("critical"), {}, 0)]
    rita = MembershipFactory(team=world["service"].team, user=UserFactory(username="rita")).user
    client.force_login(rita)
    with time_machine.travel(MONDAY, tick=False):
        incident = open_unsure(world, "high")
        url = reverse("portal:incident-severity", args=[incident.pk])
        bad = client.post(url, {"severity": "urgent"})
        assert (bad.status_code, bad.content.decode()) == (400, "severity: one of critical, high, medium, low, info")
        assert client.post(url, {"severity": "low"}).status_code == 302
        page = client.get(reverse("portal:incident-detail", args=[incident.pk])).content.decode()
        assert "changed the severity from high to low" in page
        assert EscalationState.objects.get(incident=incident).policy == world["policies"]["low"]
        second_opinion(incident.pk)
    assert Incident.objects.get(pk=incident.pk).severity == "low"


def test_a_person_changing_an_acknowledged_incident_sets_the_policy_for_its_next_escalation(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_unsure(world, "high")
        engine.tick()
        services.acknowledge(incident, actor=Actor.of(world["alice"]))
        services.change_severity(incident, severity="critical", actor=Actor.of(world["alice"]))
        state = EscalationState.objects.get(incident=incident)
        assert (state.status, state.policy) == ("acknowledged", world["policies"]["critical"])
        services.unacknowledge(incident, actor=Actor.of(world["alice"]))
        clock.shift(timedelta(seconds=1))
        engine.tick()
    assert sent(incident)[2:] == [("alice", "voice"), ("alice", "slack"), ("alice", "email")]


def test_the_api_sets_the_severity_and_names_a_bad_one(world, client):
    _, key = create_api_key(name="bot", scopes=["incidents:read", "incidents:write"])
    auth = {"HTTP_AUTHORIZATION": f"Bearer {key}"}
    with time_machine.travel(MONDAY, tick=False):
        incident = open_unsure(world, "high")
        url = f"/api/v1/incidents/{incident.pk}/severity/"
        bad = client.post(url, {"severity": "urgent"}, content_type="application/json", **auth)
        assert (bad.status_code, bad.json()["field"]) == (400, "severity")
        good = client.post(url, {"severity": "critical"}, content_type="application/json", **auth)
        assert (good.status_code, good.json()["severity"]) == (200, "critical")
        services.resolve(incident, actor=SYSTEM)
        assert client.post(url, {"severity": "low"}, content_type="application/json", **auth).status_code == 409
    assert EscalationState.objects.get(incident=incident).status == "stopped"
    entry = AuditEntry.objects.get(incident=incident, verb="incident.severity_changed")
    assert (entry.actor_label, entry.data["by"]) == ("apikey:bot", "person")


def test_an_llm_upgrade_of_a_low_incident_pages_from_the_first_level(world, anthropic_api):
    """A digest entry paged nobody: the upgraded incident starts at level 1."""
    anthropic_api.script = [(200, verdict("critical"), {}, 0)]
    with time_machine.travel(MONDAY, tick=False):
        incident = open_unsure(world, "low")
        engine.tick()
        assert sent(incident) == [("alice", "email")]  # the digest entry
        second_opinion(incident.pk)
        engine.tick()
    assert sent(incident)[1:] == [("alice", "voice"), ("alice", "slack"), ("alice", "email")]
