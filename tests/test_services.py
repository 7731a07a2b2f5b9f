import pytest
from django.db import transaction

from apps.audit.models import AuditEntry
from apps.audit.services import Actor
from apps.incidents import services
from apps.incidents.models import Incident

from .factories import IncidentFactory, MembershipFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice():
    return Actor.of(UserFactory(username="alice"))


def verbs(incident):
    return list(AuditEntry.objects.filter(incident=incident).values_list("verb", "actor_label"))


def test_acknowledge_then_resolve(alice):
    incident = IncidentFactory()

    services.acknowledge(incident, actor=alice)
    incident.refresh_from_db()
    assert incident.status == "acknowledged"
    assert incident.acknowledged_by.username == "alice" and incident.acknowledged_at

    services.resolve(incident, actor=alice)
    incident.refresh_from_db()
    assert incident.status == "resolved" and incident.resolved_by.username == "alice"
    assert verbs(incident) == [("incident.acknowledged", "alice"), ("incident.resolved", "alice")]


@pytest.mark.parametrize(
    ("status", "verb", "message"),
    [
        ("acknowledged", "acknowledge", "only a triggered incident can be acknowledged"),
        ("resolved", "acknowledge", "only a triggered incident can be acknowledged"),
        ("resolved", "resolve", "already resolved"),
    ],
)
def test_invalid_transitions_are_refused_and_write_nothing(alice, status, verb, message):
    incident = IncidentFactory(status=status)
    with pytest.raises(services.TransitionError, match=message):
        getattr(services, verb)(incident, actor=alice)
    incident.refresh_from_db()
    assert incident.status == status
    assert verbs(incident) == []


def test_reassign_records_from_and_to(alice):
    incident = IncidentFactory()
    bob = MembershipFactory(user=UserFactory(username="bob"), team=incident.service.team).user
    services.reassign(incident, assignee=bob, actor=alice)
    carol = MembershipFactory(user=UserFactory(username="carol"), team=incident.service.team).user
    services.reassign(incident, assignee=carol, actor=alice)
    outsider = UserFactory(username="olga")  # of no team of this incident
    with pytest.raises(services.TransitionError, match="olga is not a responder of the team"):
        services.reassign(incident, assignee=outsider, actor=alice)
    incident.refresh_from_db()
    assert incident.assignee == carol
    entries = AuditEntry.objects.filter(incident=incident, verb="incident.reassigned")
    assert [e.data for e in entries] == [{"from": None, "to": "bob"}, {"from": "bob", "to": "carol"}]


def test_reassign_refuses_resolved_incident_and_inactive_user(alice):
    with pytest.raises(services.TransitionError):
        services.reassign(IncidentFactory(status="resolved"), assignee=UserFactory(), actor=alice)
    with pytest.raises(services.TransitionError, match="not an active user"):
        services.reassign(IncidentFactory(), assignee=UserFactory(is_active=False), actor=alice)


def test_notes_are_kept_in_the_timeline(alice):
    incident = IncidentFactory(status="resolved")
    services.add_note(incident, text="  Rolled back the model to v1.3  ", actor=alice)
    entry = AuditEntry.objects.get(incident=incident)
    assert (entry.verb, entry.data) == ("incident.note_added", {"text": "Rolled back the model to v1.3"})
    with pytest.raises(ValueError, match="needs some text"):
        services.add_note(incident, text="   ", actor=alice)


def test_a_failed_transaction_leaves_no_audit_entry(alice):
    incident = IncidentFactory()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.acknowledge(incident, actor=alice)
        raise RuntimeError("the caller's later step failed")
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED
    assert verbs(incident) == []


@pytest.mark.django_db(transaction=True)
def test_auto_resolve_resolves_only_stale_incidents_of_services_with_a_timeout():
    from datetime import timedelta

    from django.utils import timezone

    from apps.incidents.tasks import auto_resolve_stale

    old = timezone.now() - timedelta(minutes=30)
    stale = IncidentFactory(service__auto_resolve_minutes=10, last_alert_at=old)
    fresh = IncidentFactory(service=stale.service)
    no_timeout = IncidentFactory(last_alert_at=old)

    assert auto_resolve_stale() == 1
    assert auto_resolve_stale() == 0  # running twice changes nothing
    statuses = dict(Incident.objects.values_list("pk", "status"))
    assert statuses == {stale.pk: "resolved", fresh.pk: "triggered", no_timeout.pk: "triggered"}
    assert verbs(stale) == [("incident.resolved", "system")]
