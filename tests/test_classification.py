import json
from pathlib import Path

import pytest

from apps.incidents.classification import classify
from apps.incidents.models import Incident

DATA = Path(__file__).parent / "data" / "labelled_alerts.json"

# classify() reads the admins' rules (none here) from the database once per process.
pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("title", "labels", "category", "severity"),
    [
        # The documented LLM metric alerts, with the rules alone.
        ("p95 latency 2.3x baseline on chat-api", {}, "latency", "high"),
        ("Hallucination rate 6% on claude-3-5-haiku", {}, "quality", "high"),
        ("Token cost spike 8% above forecast", {}, "cost", "medium"),
        ("Token quota exhausted within 4 hours", {}, "cost", "high"),
        ("GPU memory 93% on inference-2", {}, "infrastructure", "high"),
        ("GPU temperature 88°C on gpu-node-1", {}, "infrastructure", "high"),
        ("KubeNodeNotReady", {"severity": "warning"}, "infrastructure", "medium"),
    ],
)
def test_documented_llm_alerts(title, labels, category, severity):
    verdict = classify(title, "", labels)
    assert (verdict.category, verdict.severity) == (category, severity)
    assert verdict.rationale and 0 < verdict.confidence <= 1


def test_model_and_environment_come_from_labels_or_text():
    verdict = classify("Latency 2x on gpt-4o in production", "", {})
    assert (verdict.model, verdict.environment) == ("gpt-4o", "prod")
    verdict = classify("x", "", {"model": "llama-3-70b", "model_version": "2024-07", "env": "staging"})
    assert (verdict.model, verdict.environment) == ("llama-3-70b@2024-07", "staging")


def test_labelled_set_meets_the_targets():
    alerts = json.loads(DATA.read_text())
    results = [(classify(a["title"], a["description"], a["labels"]), a["expected"]) for a in alerts]
    assert len(alerts) >= 200
    assert sum(r.category == e["category"] for r, e in results) / len(alerts) >= 0.9
    assert sum(r.severity == e["severity"] for r, e in results) / len(alerts) >= 0.85


def test_a_new_incident_carries_the_rules_verdict(client, ingest_path):
    body = {"title": "GPU temperature 91C on gpu-node-4", "labels": {"model": "llama-3-70b", "env": "prod"}}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    incident = Incident.objects.get()
    assert (incident.category, incident.classified_severity, incident.classified_by) == ("infrastructure", "critical", "rules")
    assert (incident.llm_model, incident.environment) == ("llama-3-70b", "prod")


def test_the_detail_page_shows_the_verdict_and_says_rules_only(client, ingest_path, responder):
    body = {"title": "Hallucination rate 7% on claude-3-5-haiku"}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    client.force_login(responder)
    page = client.get(f"/incidents/{Incident.objects.get().pk}/").content.decode()
    assert "quality" in page and "suggests high" in page and "LLM not configured" in page
