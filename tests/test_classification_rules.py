"""Admins' classification rules: edited in Django admin, applied to the next alert."""

import pytest
from django.contrib.auth import get_user_model
from django.core.cache import cache

from apps.incidents import classification_rules
from apps.incidents.classification import classify
from apps.incidents.models import ClassificationRule, Incident

pytestmark = pytest.mark.django_db

ADD = "/admin/incidents/classificationrule/add/"


@pytest.fixture
def admin_client(client):
    client.force_login(get_user_model().objects.create(username="root", is_staff=True, is_superuser=True))
    return client


def form(**fields):
    base = {
        "name": "Red journeys are availability", "enabled": "on", "order": "0", "pattern": "", "label_name": "",
        "label_value": "", "source": "", "category": "", "severity": "", "environment": "", "model": "", "confidence": "0.9",
    }
    return {**base, **fields}


def test_a_rule_added_in_admin_classifies_the_next_incident(admin_client, client, ingest_path):
    # Words the built-in rules do not know (a failing probe they do: availability).
    body = {"title": "Checkout journey is red on https://chat.example.org"}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    before = Incident.objects.get()
    assert (before.category, before.classified_severity) == ("other", "medium")

    response = admin_client.post(ADD, form(pattern=r"journey (is|went|turned) red", category="availability", severity="critical"))
    assert response.status_code == 302
    before.status = "resolved"
    before.save()

    client.post(ingest_path("generic"), data=body, content_type="application/json")
    after = Incident.objects.exclude(pk=before.pk).get()
    assert (after.category, after.classified_severity, after.classification_confidence) == ("availability", "critical", 0.9)
    assert after.classification_rationale == "admin rule 'Red journeys are availability'"
    assert after.classified_by == "rules"


def test_bad_regex_or_no_matcher_or_nothing_set_are_form_errors(admin_client):
    page = admin_client.post(ADD, form(pattern="probe (fail", category="availability")).content.decode()
    assert "Not a valid regular expression: missing )" in page
    page = admin_client.post(ADD, form(category="availability")).content.decode()
    assert "Give at least one matcher" in page
    page = admin_client.post(ADD, form(pattern="probe")).content.decode()
    assert "Set at least one of category, severity" in page
    page = admin_client.post(ADD, form(label_name="team", category="cost")).content.decode()
    assert "Give both the label" in page
    page = admin_client.post(ADD, form(pattern="probe", category="cost", confidence="1.5")).content.decode()
    assert "less than or equal to 1" in page
    assert not ClassificationRule.objects.exists()


def test_first_enabled_rule_by_order_wins_and_all_matchers_must_hold():
    ClassificationRule.objects.create(name="off", enabled=False, order=0, pattern="gpu", category="security")
    ClassificationRule.objects.create(name="staging gpu", order=1, pattern="gpu", label_name="env", label_value="staging", severity="low")
    ClassificationRule.objects.create(name="any gpu", order=2, pattern="gpu", environment="lab", model="llama-3")

    staging = classify("GPU memory 93% on inference-2", "", {"env": "staging"})
    assert (staging.category, staging.severity, staging.rationale) == ("infrastructure", "low", "admin rule 'staging gpu'")
    prod = classify("GPU memory 93% on inference-2", "", {"env": "prod"})
    assert (prod.severity, prod.environment, prod.model) == ("high", "lab", "llama-3")  # severity from the built-in rules
    assert classify("p95 latency 2.3x baseline").rationale.startswith("latency by")


def test_source_and_camel_case_alert_names_match():
    ClassificationRule.objects.create(name="grafana nodes", pattern="NodeNotReady", source="grafana", category="availability")
    assert classify("x", "", {"alertname": "KubeNodeNotReady"}, source="grafana").category == "availability"
    assert classify("x", "", {"alertname": "KubeNodeNotReady"}, source="alertmanager").category == "infrastructure"


def test_a_save_bumps_the_shared_version_once_committed(django_capture_on_commit_callbacks):
    """Other processes compare this version with theirs (at most once a second) and reload."""
    classify("warm the per-process copy")
    before = cache.get(classification_rules.rules.version_key)
    with django_capture_on_commit_callbacks(execute=True):
        rule = ClassificationRule.objects.create(name="cost", pattern="spend", category="cost")
        assert cache.get(classification_rules.rules.version_key) == before  # not before the commit
    after_save = cache.get(classification_rules.rules.version_key)
    assert after_save != before
    with django_capture_on_commit_callbacks(execute=True):
        rule.delete()
    assert cache.get(classification_rules.rules.version_key) not in (before, after_save)
