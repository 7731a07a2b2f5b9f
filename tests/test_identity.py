"""Identifying labels: grouping, similarity and dependency correlation never put two
services' (clusters', tenants') problems together; a responder still may."""

import pytest

from apps.audit.services import SYSTEM
from apps.incidents import identity, services, settle
from apps.incidents.events import AlertEvent
from apps.incidents.ingest import ingest
from apps.incidents.models import Alert, GroupingRule, Incident

from .factories import ServiceFactory

pytestmark = pytest.mark.django_db


def event(title, key, **labels):
    return AlertEvent(
        title=title, status="firing", severity="critical", dedup_key=key, fingerprint=key.ljust(16, "0"),
        source="alertmanager", payload={}, labels=labels,
    )


def send(service, *events):
    return ingest(list(events), service_id=service.pk, integration_id=None, actor=SYSTEM)


def test_conflict_needs_both_to_carry_the_label():
    names = identity.DEFAULT
    assert identity.conflict({"service": "a"}, {"service": "b"}, names) == ("service", "a", "b")
    assert identity.conflict({"service": "a"}, {"cluster": "eu"}, names) is None
    assert identity.conflict({"service": "a", "pod": "x"}, {"service": "a", "pod": "y"}, names) is None  # pod: not identifying


def test_the_defaults_add_the_grouping_rules_labels_but_alertname():
    rule = GroupingRule(group_by=["alertname", "instance"])
    assert identity.labels_of(None, [rule]) == (*identity.DEFAULT, "instance")
    assert identity.labels_of(["tenant"], [rule]) == ("tenant",)


def test_a_grouping_rule_on_alertname_keeps_each_service_in_its_own_incident(service):
    GroupingRule.objects.create(service=service, name="by alert", group_by=["alertname"])
    results = send(
        service,
        event("Latency high on chat", "c1", alertname="LLMLatencyHigh", service="chat", instance="c-1"),
        event("Latency high on rag", "r1", alertname="LLMLatencyHigh", service="rag", instance="r-1"),
        event("Latency high on chat", "c2", alertname="LLMLatencyHigh", service="chat", instance="c-2"),
        event("Latency high", "n1", alertname="LLMLatencyHigh", instance="x-1"),  # no service label: no objection
    )
    assert [r.action for r in results] == ["created", "created", "appended", "appended"]
    chat, rag = results[0].incident_id, results[1].incident_id
    assert [r.incident_id for r in results] == [chat, rag, chat, rag]  # the unlabelled one joins the newest
    kept_apart = Alert.objects.get(pk=results[1].alert_id)
    assert kept_apart.dedup_reason == "opened"
    assert kept_apart.dedup_detail == "grouping rule “by alert” would join an incident of this request, but service differs (rag ≠ chat): kept apart"
    joined = Alert.objects.get(pk=results[2].alert_id)
    assert joined.dedup_detail.endswith("identifying labels checked: service")

    # Later requests: each service's alert finds its own group incident among the several.
    later = send(service, event("Latency high on chat", "c3", alertname="LLMLatencyHigh", service="chat", instance="c-3"),
                 event("Latency high on rag", "r3", alertname="LLMLatencyHigh", service="rag", instance="r-3"),
                 event("Latency high on ocr", "o3", alertname="LLMLatencyHigh", service="ocr", instance="o-3"))
    assert [r.incident_id for r in later[:2]] == [chat, rag]
    assert later[2].action == "created"
    ocr = Alert.objects.get(pk=later[2].alert_id)
    assert ocr.dedup_detail.startswith("grouping rule “by alert” would join #") and "service differs (ocr ≠ " in ocr.dedup_detail
    for incident in Incident.objects.all():
        assert len({a.labels.get("service") for a in incident.alerts.all()} - {None}) == 1


def test_similarity_merges_within_a_service_label_never_across(service):
    # The same words on both services: only the label keeps them apart.
    [first] = send(service, event("p95 latency above 2x baseline on node-1", "a", service="chat-api"))
    settle.settle([first.incident_id])
    [other] = send(service, event("p95 latency above 2x baseline on node-2", "b", service="rag"))
    [same] = send(service, event("p95 latency above 2x baseline on node-3", "c", service="chat-api"))

    outcome = settle.settle([other.incident_id, same.incident_id])

    assert outcome[other.incident_id] == "announced"
    assert outcome[same.incident_id] == f"merged into #{first.incident_number}"
    merged = Alert.objects.get(pk=same.alert_id)
    assert merged.dedup_reason == "similarity" and merged.dedup_detail.endswith("identifying labels checked: service")


def test_a_service_may_say_which_labels_identify_its_alerts(service):
    service.identifying_labels = []  # one team, one problem, whatever the labels say
    service.save()
    [first] = send(service, event("p95 latency above 2x baseline on node-1", "a", service="chat-api"))
    settle.settle([first.incident_id])
    [other] = send(service, event("p95 latency above 2x baseline on node-2", "b", service="rag"))
    assert settle.settle([other.incident_id]) == {other.incident_id: f"merged into #{first.incident_number}"}


def test_a_dependency_in_another_cluster_is_not_the_cause(service):
    database = ServiceFactory(name="Postgres", team=service.team)
    service.depends_on.add(database)
    [cause] = send(database, event("Postgres primary down", "pg", cluster="eu-1", service="postgres"))
    settle.settle([cause.incident_id])
    [elsewhere] = send(service, event("Checkout 5xx above 20%", "us", cluster="us-1", service="checkout"))
    [here] = send(service, event("Checkout pods crash looping", "eu", cluster="eu-1", service="checkout"))

    outcome = settle.settle([elsewhere.incident_id, here.incident_id])

    assert outcome[elsewhere.incident_id] == "announced"  # a different `service` label does not matter here
    assert outcome[here.incident_id] == f"inhibited by #{cause.incident_number}"


def test_a_responder_may_still_merge_across_services(service):
    a, b = send(service, event("Latency on chat", "a", service="chat"), event("Errors on rag", "b", service="rag"))
    services.merge(b.incident_id, into=a.incident_id, actor=SYSTEM)
    assert Incident.objects.get(pk=a.incident_id).alert_count == 2
