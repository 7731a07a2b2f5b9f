"""Noise reduction: grouping rules, similarity, dependencies (inhibition), merge and split."""

import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
import time_machine
from django.db import connection, transaction
from django.test import Client as DjangoClient
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM, Actor
from apps.escalation import engine, presets
from apps.escalation.models import EscalationState
from apps.incidents import services, settle
from apps.incidents.events import AlertEvent
from apps.incidents.ingest import ingest
from apps.incidents.models import Alert, GroupingRule, Incident
from apps.notifications.models import Notification, WebhookEndpoint

from .factories import MembershipFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


def event(title, key, severity="high", status="firing", description="", **labels):
    return AlertEvent(
        title=title, status=status, severity=severity, dedup_key=key, fingerprint=key.ljust(16, "0"),
        source="generic", payload={"title": title}, description=description, labels=labels,
    )


def send(service, *events):
    return ingest(list(events), service_id=service.pk, integration_id=None, actor=SYSTEM)


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def am_alert(fingerprint, status="firing", **labels):
    return {
        "status": status, "labels": {"alertname": "HighErrorRate", **labels},
        "annotations": {"summary": f"5xx above 5% on {labels.get('instance', '?')}"},
        "startsAt": "2026-11-25T10:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus/graph", "fingerprint": fingerprint,
    }


def am_body(*alerts, status="firing"):
    return {
        "version": "4", "groupKey": '{}:{alertname="HighErrorRate"}', "truncatedAlerts": 0, "status": status,
        "receiver": "incident-manager", "groupLabels": {"alertname": "HighErrorRate"}, "commonLabels": {},
        "commonAnnotations": {}, "externalURL": "http://alertmanager:9093", "alerts": list(alerts),
    }


# --- level 2: grouping rules ------------------------------------------------------------


def test_a_grouping_rule_folds_an_alertmanager_group_into_one_incident_and_says_why(client, ingest_path, service):
    GroupingRule.objects.create(service=service, name="per alert and cluster", group_by=["alertname", "cluster"], window_minutes=30)
    path = ingest_path("alertmanager")

    body = am_body(*(am_alert(f"{n:016x}", instance=f"web-{n}", cluster="eu-1") for n in range(5)), am_alert("f" * 16, instance="web-9", cluster="us-1"))
    answer = post(client, path, body).json()["alerts"]

    assert [a["action"] for a in answer] == ["created", "appended", "appended", "appended", "appended", "created"]
    eu, us = Incident.objects.get(labels__cluster="eu-1"), Incident.objects.get(labels__cluster="us-1")
    assert (eu.alert_count, us.alert_count) == (5, 1)
    reasons = list(eu.alerts.order_by("id").values_list("dedup_reason", "dedup_detail"))
    assert reasons[0] == ("opened", "")
    assert reasons[1] == ("grouping", "grouping rule “per alert and cluster”: same alertname, cluster within 30 min; "
                                      "identifying labels checked: cluster")
    # The same alert again joins by its own key (level 1).
    again = post(client, path, am_body(am_alert(f"{3:016x}", instance="web-3", cluster="eu-1"))).json()["alerts"]
    assert again[0]["incident"] == eu.pk
    assert eu.alerts.order_by("-id").first().dedup_reason == "dedup_key"


def test_a_grouped_incident_resolves_when_its_last_alert_resolves(client, ingest_path, service):
    GroupingRule.objects.create(service=service, name="by alertname", group_by=["alertname"])
    path = ingest_path("alertmanager")
    post(client, path, am_body(am_alert("a" * 16, instance="web-1"), am_alert("b" * 16, instance="web-2")))
    incident = Incident.objects.get()

    first = post(client, path, am_body(am_alert("a" * 16, "resolved", instance="web-1"), status="resolved")).json()["alerts"]
    assert first[0]["action"] == "alert_resolved"
    incident.refresh_from_db()
    assert incident.status == "triggered"  # web-2 still fires

    last = post(client, path, am_body(am_alert("b" * 16, "resolved", instance="web-2"), status="resolved")).json()["alerts"]
    assert last[0]["action"] == "resolved"
    incident.refresh_from_db()
    assert incident.status == "resolved"


def test_an_alert_that_fires_again_keeps_its_grouped_incident_open(client, ingest_path, service):
    """web-1 resolves, then fires again (a flap) while web-2 still fires: when web-2
    resolves, web-1 is still firing, so the incident stays open."""
    GroupingRule.objects.create(service=service, name="by alertname", group_by=["alertname"])
    path = ingest_path("alertmanager")
    post(client, path, am_body(am_alert("a" * 16, instance="web-1"), am_alert("b" * 16, instance="web-2")))
    post(client, path, am_body(am_alert("a" * 16, "resolved", instance="web-1"), status="resolved"))

    again = post(client, path, am_body(am_alert("a" * 16, instance="web-1"))).json()["alerts"]
    assert again[0]["action"] == "appended"
    resolved = post(client, path, am_body(am_alert("b" * 16, "resolved", instance="web-2"), status="resolved")).json()["alerts"]
    assert resolved[0]["action"] == "alert_resolved"
    assert Incident.objects.get().status == "triggered"


def test_a_group_quiet_for_longer_than_its_window_opens_a_new_incident(service):
    GroupingRule.objects.create(service=service, name="by alertname", group_by=["alertname"], window_minutes=10)
    start = timezone.now()
    with time_machine.travel(start, tick=False) as clock:
        [first] = send(service, event("Disk full on db-1", "disk-db-1", alertname="DiskFull"))
        clock.shift(timedelta(minutes=9))
        [second] = send(service, event("Disk full on db-2", "disk-db-2", alertname="DiskFull"))
        clock.shift(timedelta(minutes=11))
        [third] = send(service, event("Disk full on db-3", "disk-db-3", alertname="DiskFull"))
    assert second.incident_id == first.incident_id
    assert third.action == "created" and third.incident_id != first.incident_id
    # ... and later alerts of the group join the new one.
    [fourth] = send(service, event("Disk full on db-4", "disk-db-4", alertname="DiskFull"))
    assert fourth.incident_id == third.incident_id


@pytest.mark.django_db(transaction=True)
def test_concurrent_requests_of_one_group_open_one_incident(ingest_path, service):
    GroupingRule.objects.create(service=service, name="by alertname", group_by=["alertname"])
    path = ingest_path("alertmanager")

    def fire(n):
        try:
            return post(DjangoClient(), path, am_body(am_alert(f"{n:016x}", instance=f"web-{n}"))).status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(fire, range(24)))

    assert codes == [202] * 24
    incident = Incident.objects.get()
    assert incident.alert_count == 24
    assert Alert.objects.filter(dedup_reason="opened").count() == 1


# --- level 3: similarity, in the worker before the first page ------------------------------


def test_a_reworded_alert_is_merged_into_the_open_incident_before_anyone_is_paged(service):
    WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", service=service)
    [first] = send(service, event("GPU memory above 90% on inference node gpu-7", "a1", alertname="GpuMemHigh"))
    assert settle.settle([first.incident_id]) == {first.incident_id: "announced"}
    [second] = send(service, event("Inference node gpu-9: GPU memory usage over 90 percent", "a2", alertname="GPUMemoryPressure"))
    assert second.action == "created"  # ingest is fast; the comparison is the worker's

    outcome = settle.settle([second.incident_id])

    assert outcome == {second.incident_id: f"merged into #{first.incident_number}"}
    merged = Incident.objects.get(pk=second.incident_id)
    assert (merged.status, merged.merged_into_id) == ("resolved", first.incident_id)
    alert = Alert.objects.get(pk=second.alert_id)
    assert alert.incident_id == first.incident_id
    assert alert.dedup_reason == "similarity"
    assert alert.dedup_detail.startswith("text 0.") and f"similar to #{first.incident_number}" in alert.dedup_detail
    # Only the first incident was announced, and the merged one never escalates.
    assert list(Notification.objects.values_list("incident_id", flat=True)) == [first.incident_id]
    assert EscalationState.objects.filter(incident=merged).exclude(status="stopped").count() == 0
    # Its key now routes to the surviving incident.
    [repeat] = send(service, event("Inference node gpu-9: GPU memory usage over 90 percent", "a2"))
    assert (repeat.action, repeat.incident_id) == ("appended", first.incident_id)


def test_different_problems_and_less_severe_targets_are_not_merged(service):
    [latency] = send(service, event("p95 latency of chat-completions is 2x baseline", "l1", severity="medium"))
    [disk] = send(service, event("Disk almost full on postgres-1", "d1"))
    [latency_critical] = send(service, event("p95 latency of chat completions is twice the baseline", "l2", severity="critical"))

    outcome = settle.settle([latency.incident_id, disk.incident_id, latency_critical.incident_id])

    assert set(outcome.values()) == {"announced"}
    assert Incident.objects.filter(status="triggered").count() == 3


def test_a_service_threshold_of_1_turns_similarity_off(service):
    service.similarity_threshold = 1.0
    service.save()
    WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", service=service)
    [a] = send(service, event("Disk almost full on postgres-1", "d1"))
    [b] = send(service, event("Disk almost full on postgres-1", "d2"))
    # Nothing to check before paging: neither waits for the worker; both are announced at once.
    assert not Incident.objects.filter(settling=True).exists()
    assert sorted(Notification.objects.values_list("incident_id", flat=True)) == [a.incident_id, b.incident_id]


def test_with_similarity_off_a_dependency_still_makes_new_incidents_wait_for_the_check(service):
    service.similarity_threshold = 1.0
    service.save()
    service.depends_on.add(ServiceFactory(name="Postgres", team=service.team))
    [a] = send(service, event("Checkout 5xx above 20%", "c1"))
    assert Incident.objects.get(pk=a.incident_id).settling


def test_one_settle_task_takes_the_others_waiting_in_a_storm(service):
    results = [send(service, event(title, f"k{n}"))[0] for n, title in enumerate(
        ["Disk almost full on postgres-1", "Checkout 5xx above 20%", "Token quota exhausted for gpt-main"])]

    outcome = settle.settle([results[0].incident_id])

    assert outcome == {r.incident_id: "announced" for r in results}
    assert not Incident.objects.filter(settling=True).exists()


def test_no_page_goes_out_while_an_incident_is_settling(service):
    team_member = MembershipFactory(team=service.team, user=UserFactory(username="oncall")).user
    presets.severity_matrix(service, [{"users": [team_member]}])
    [opened] = send(service, event("Checkout is down", "down", severity="critical"))
    incident = Incident.objects.get(pk=opened.incident_id)
    assert incident.settling

    engine.tick(now=timezone.now() + timedelta(minutes=1))
    assert not Notification.objects.filter(incident=incident).exists()

    settle.settle([incident.pk])
    engine.tick(now=timezone.now() + timedelta(minutes=1))
    assert Notification.objects.filter(incident=incident, recipient=team_member).exists()


# --- correlation: dependencies and inhibition ----------------------------------------------


def test_an_incident_of_a_dependent_service_waits_for_its_cause_then_pages(service):
    database = ServiceFactory(name="Postgres", team=service.team)
    service.depends_on.add(database)
    person = MembershipFactory(team=service.team, user=UserFactory(username="pat")).user
    presets.severity_matrix(service, [{"users": [person]}])
    WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", service=service)
    [cause] = send(database, event("Postgres primary down", "pg-down", severity="critical"))
    settle.settle([cause.incident_id])
    [effect] = send(service, event("Checkout 5xx above 20%", "co-5xx", severity="critical"))

    assert settle.settle([effect.incident_id]) == {effect.incident_id: f"inhibited by #{cause.incident_number}"}

    child = Incident.objects.get(pk=effect.incident_id)
    assert child.parent_id == cause.incident_id
    engine.tick(now=timezone.now() + timedelta(minutes=5))
    assert not Notification.objects.filter(incident=child).exists()  # neither announced nor paged
    entry = AuditEntry.objects.get(incident=child, verb="incident.inhibited")
    assert entry.data["why"] == f"{service.name} depends on Postgres, which has open incident #{cause.incident_number}"

    services.resolve(cause.incident_id, actor=SYSTEM)

    assert AuditEntry.objects.filter(incident=child, verb="incident.released").exists()
    assert Notification.objects.filter(incident=child, channel="webhook").exists()  # announced now
    engine.tick(now=timezone.now() + timedelta(minutes=1))
    assert Notification.objects.filter(incident=child, recipient=person).exists()


def test_an_effect_seen_before_its_cause_is_held_back_once_the_cause_opens(service):
    database = ServiceFactory(name="Postgres", team=service.team)
    service.depends_on.add(database)
    person = MembershipFactory(team=service.team, user=UserFactory(username="pat")).user
    presets.severity_matrix(service, [{"users": [person]}, {"users": [person]}])
    WebhookEndpoint.objects.create(name="ops", url="http://127.0.0.1:9/hook", service=service)
    [effect] = send(service, event("Checkout 5xx above 20%", "co-5xx", severity="critical"))
    assert settle.settle([effect.incident_id]) == {effect.incident_id: "announced"}
    engine.tick(now=timezone.now() + timedelta(seconds=1))
    paged = Notification.objects.filter(incident_id=effect.incident_id).count()
    assert paged > 0  # level 1 went out: nothing was known of a cause yet

    [cause] = send(database, event("Postgres primary down", "pg-down", severity="critical"))
    assert settle.settle([cause.incident_id]) == {cause.incident_id: f"announced; holds back #{effect.incident_number}"}

    child = Incident.objects.get(pk=effect.incident_id)
    assert child.parent_id == cause.incident_id
    engine.tick(now=timezone.now() + timedelta(hours=1))
    assert Notification.objects.filter(incident_id=effect.incident_id).count() == paged  # no further level

    # The cause resolves: the effect escalates again, and is not announced a second time.
    WebhookEndpoint.objects.create(name="late", url="http://127.0.0.1:9/hook", service=service)
    announced_before = Notification.objects.filter(incident_id=effect.incident_id, reason__announce__isnull=False).count()
    services.resolve(cause.incident_id, actor=SYSTEM)
    assert AuditEntry.objects.filter(incident_id=effect.incident_id, verb="incident.released").exists()
    assert Notification.objects.filter(incident_id=effect.incident_id, reason__announce__isnull=False).count() == announced_before + 1


def test_the_portal_shows_why_an_incident_is_not_paging(client, service, responder):
    database = ServiceFactory(name="Postgres", team=service.team)
    service.depends_on.add(database)
    [cause] = send(database, event("Postgres primary down", "pg-down", severity="critical"))
    settle.settle([cause.incident_id])
    [effect] = send(service, event("Checkout 5xx above 20%", "co-5xx", severity="critical"))
    settle.settle([effect.incident_id])
    client.force_login(responder)

    child_page = client.get(f"/incidents/{effect.incident_id}/").content.decode()
    parent_page = client.get(f"/incidents/{cause.incident_id}/").content.decode()

    assert "Not paging: likely caused by" in child_page and f"#{cause.incident_number} Postgres primary down" in child_page
    assert f"#{effect.incident_number}</a> Checkout 5xx above 20%" in parent_page


# --- merge and split, by a responder ---------------------------------------------------------


def test_merge_and_split_through_the_api(client, service, responder):
    [a] = send(service, event("Checkout 5xx", "k1"))
    [b] = send(service, event("Payment provider timeouts", "k2"))
    client.force_login(responder)

    merged = client.post(f"/api/v1/incidents/{b.incident_id}/merge/", {"into": a.incident_id}, content_type="application/json")

    assert merged.status_code == 200
    assert merged.json()["alert_count"] == 2
    assert {x["dedup_reason"] for x in merged.json()["alerts"]} == {"opened", "merged"}
    assert Incident.objects.get(pk=b.incident_id).merged_into_id == a.incident_id
    assert AuditEntry.objects.filter(verb="incident.merged", actor_label="rita").exists()
    [later] = send(service, event("Payment provider timeouts", "k2"))
    assert later.incident_id == a.incident_id  # the merged key follows

    split = client.post(f"/api/v1/incidents/{a.incident_id}/split/", {"alert": b.alert_id}, content_type="application/json")

    assert split.status_code == 201
    new_id = split.json()["id"]
    assert split.json()["alert_count"] == 2  # both alerts of key k2
    assert Incident.objects.get(pk=a.incident_id).alert_count == 1
    # The split key stays apart for the new incident's life.
    [after] = send(service, event("Payment provider timeouts", "k2"))
    assert after.incident_id == new_id
    assert AuditEntry.objects.filter(incident_id=a.incident_id, verb="incident.split").exists()


def test_a_split_alert_never_groups_back_into_the_incident_it_left(service, responder):
    GroupingRule.objects.create(service=service, name="by alertname", group_by=["alertname"])
    title = "5xx above 20% of requests"  # the same words: similarity alone would merge them
    [a, b] = send(service, event(title, "checkout", alertname="HighErrorRate"), event(title, "payments", alertname="HighErrorRate"))
    assert b.incident_id == a.incident_id  # grouped, wrongly as it turns out
    settle.settle([a.incident_id])
    split_off = services.split(b.alert_id, actor=Actor.of(responder))
    services.resolve(split_off, actor=Actor.of(responder))

    [again] = send(service, event(title, "payments", alertname="HighErrorRate"))
    [other] = send(service, event(title, "search", alertname="HighErrorRate"))

    assert again.action == "created" and again.incident_id not in (a.incident_id, split_off.pk)
    assert other.incident_id == a.incident_id  # the rule still groups the rest
    assert settle.settle([again.incident_id]) == {again.incident_id: "announced"}  # nor does similarity take it back


def test_merge_and_split_refusals_are_4xx_naming_the_field(client, service, responder):
    [a] = send(service, event("Checkout 5xx", "k1"))
    [b] = send(service, event("Payment provider timeouts", "k2"))
    client.force_login(responder)

    into_itself = client.post(f"/api/v1/incidents/{a.incident_id}/merge/", {"into": a.incident_id}, content_type="application/json")
    no_such = client.post(f"/api/v1/incidents/{a.incident_id}/merge/", {"into": 999999}, content_type="application/json")
    foreign_alert = client.post(f"/api/v1/incidents/{a.incident_id}/split/", {"alert": b.alert_id}, content_type="application/json")
    only_key = client.post(f"/api/v1/incidents/{a.incident_id}/split/", {"alert": a.alert_id}, content_type="application/json")

    assert into_itself.status_code == 409
    assert (no_such.status_code, no_such.json()["field"]) == (400, "into")
    assert (foreign_alert.status_code, foreign_alert.json()["field"]) == (400, "alert")
    assert only_key.status_code == 409
    assert Incident.objects.filter(status="triggered").count() == 2


def test_a_responder_merges_and_splits_in_the_portal(client, service, responder):
    [a] = send(service, event("Checkout 5xx", "k1"))
    [b] = send(service, event("Payment provider timeouts", "k2"))
    client.force_login(responder)

    page = client.post(f"/incidents/{b.incident_id}/merge", {"into": f"#{a.incident_number}"}, follow=True)
    assert Incident.objects.get(pk=b.incident_id).merged_into_id == a.incident_id
    assert "Merged into" in page.content.decode()

    target_page = client.get(f"/incidents/{a.incident_id}/").content.decode()
    assert "merged by a responder" in target_page and "Split out" in target_page

    response = client.post(f"/incidents/{a.incident_id}/alerts/{b.alert_id}/split")
    new = Incident.objects.exclude(pk__in=[a.incident_id, b.incident_id]).get()
    assert response.headers["Location"] == f"/incidents/{new.pk}/"
    assert new.alerts.get().dedup_reason == "split"


def test_viewers_cannot_merge(client, service):
    [a] = send(service, event("Checkout 5xx", "k1"))
    [b] = send(service, event("Payment provider timeouts", "k2"))
    viewer = MembershipFactory(team=service.team, user=UserFactory(username="vic"), role="viewer").user
    client.force_login(viewer)
    assert client.post(f"/incidents/{b.incident_id}/merge", {"into": a.incident_number}).status_code == 403
    assert client.post(f"/api/v1/incidents/{b.incident_id}/merge/", {"into": a.incident_id}, content_type="application/json").status_code == 403
    assert Incident.objects.filter(merged_into__isnull=False).count() == 0


class HeldOpen:
    """Run `work` in a transaction of another connection (a thread), and keep that
    transaction open, with its locks, until release() commits it."""

    def __init__(self, work):
        self._work, self._ready, self._release = work, threading.Event(), threading.Event()
        self._error = None
        self._thread = threading.Thread(target=self._run)
        self._thread.start()
        assert self._ready.wait(10), "the other transaction did not get going"
        if self._error:
            raise self._error

    def _run(self):
        try:
            with transaction.atomic():
                self._work()
                self._ready.set()
                self._release.wait(10)
        except Exception as exc:
            self._error = exc
        finally:
            self._ready.set()
            connection.close()

    def release(self):
        self._release.set()
        self._thread.join(10)


def in_thread(work):
    def run():
        try:
            return work()
        finally:
            connection.close()

    return ThreadPoolExecutor(1).submit(run)


@pytest.mark.django_db(transaction=True)
def test_a_repeat_that_races_a_resolve_opens_a_new_incident(service):
    """Repeats take a path of their own (one statement, no exclusive lock on the key);
    an incident resolved by a responder while a repeat of its alert is on the way
    must not swallow that alert."""
    (first,) = send(service, event("GPU memory pressure", "gpu-1"))
    resolving = HeldOpen(lambda: services.resolve(first.incident_id, actor=SYSTEM))

    repeat = in_thread(lambda: send(service, event("GPU memory pressure", "gpu-1")))
    time.sleep(0.3)  # the repeat is waiting for the incident's row
    resolving.release()
    (result,) = repeat.result(timeout=10)

    assert result.action == "created" and result.incident_id != first.incident_id
    old, new = Incident.objects.get(pk=first.incident_id), Incident.objects.get(pk=result.incident_id)
    assert old.status == Incident.Status.RESOLVED and old.alert_count == 1
    assert new.status == Incident.Status.TRIGGERED and new.alert_count == 1
    assert Alert.objects.get(pk=result.alert_id).incident_id == new.pk


@pytest.mark.django_db(transaction=True)
def test_a_repeat_that_races_a_split_follows_its_key_to_the_new_incident(service):
    GroupingRule.objects.create(service=service, name="by name", group_by=["alertname"])
    a, b = send(service, event("Disk filling", "disk-a", alertname="DiskFilling"),
                event("Disk filling", "disk-b", alertname="DiskFilling"))
    assert a.incident_id == b.incident_id
    split_out = {}
    splitting = HeldOpen(lambda: split_out.setdefault("incident", services.split(a.alert_id, actor=SYSTEM)))

    repeat = in_thread(lambda: send(service, event("Disk filling", "disk-a", alertname="DiskFilling")))
    time.sleep(0.3)  # the repeat is waiting for the key the split holds
    splitting.release()
    (result,) = repeat.result(timeout=10)

    assert result.incident_id == split_out["incident"].pk
    assert Incident.objects.get(pk=a.incident_id).alert_count == 1  # disk-b's alone
    assert Incident.objects.get(pk=result.incident_id).alert_count == 2
