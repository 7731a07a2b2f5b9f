"""The LLM's second opinion through the real anthropic SDK, against a local fake API."""

from decimal import Decimal

import pytest

from apps.audit.models import AuditEntry
from apps.incidents.models import Incident
from apps.incidents.redaction import redact
from apps.incidents.triage import second_opinion

from .fake_anthropic import error, tool_answer

pytestmark = pytest.mark.django_db

GOOD = {
    "category": "availability",
    "severity": "critical",
    "model": "gpt-4o",
    "environment": "prod",
    "confidence": 0.9,
    "rationale": "Synthetic probe of the chat endpoint fails: users cannot reach it.",
}
# 420 input tokens at $1/M and 60 output tokens at $5/M
ONE_CALL = Decimal("0.000720")


@pytest.fixture
def unsure_incident(client, ingest_path):
    """An alert the rules cannot place (category other, low confidence).  These tests
    call the worker's code directly: in a rolled-back test nothing runs on commit."""
    body = {"title": "Checkout journey is red on https://chat.example.org", "description": "contact ops@example.org, 10.0.0.7"}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    incident = Incident.objects.get()
    assert (incident.category, incident.classified_by) == ("other", "rules")
    return incident


def fast_retry():
    return {"retry-after-ms": "10"}


def test_a_good_tool_answer_reclassifies_and_records_the_cost(anthropic_api, unsure_incident):
    anthropic_api.script = [(200, tool_answer(GOOD), {}, 0)]

    assert second_opinion(unsure_incident.pk) == "classified"

    incident = Incident.objects.get()
    assert (incident.category, incident.classified_severity, incident.classified_by) == ("availability", "critical", "llm")
    assert (incident.llm_model, incident.environment) == ("gpt-4o", "prod")
    assert (incident.llm_input_tokens, incident.llm_output_tokens, incident.llm_cost_usd) == (420, 60, ONE_CALL)
    assert AuditEntry.objects.filter(incident=incident, verb="incident.classified").exists()
    sent = anthropic_api.requests[0]
    assert sent["path"] == "/v1/messages"
    assert "sk-ant-test-key" in (sent["headers"].get("x-api-key", "") + sent["headers"].get("authorization", ""))
    assert sent["json"]["tool_choice"] == {"type": "tool", "name": "record_classification"}
    prompt = sent["json"]["messages"][0]["content"]
    assert "ops@example.org" not in prompt and "10.0.0.7" not in prompt and "[EMAIL]" in prompt


def test_429_then_success_is_retried(anthropic_api, unsure_incident):
    anthropic_api.script = [
        (429, error("rate_limit_error", "slow down"), fast_retry(), 0),
        (200, tool_answer(GOOD), {}, 0),
    ]
    assert second_opinion(unsure_incident.pk) == "classified"
    assert len(anthropic_api.requests) == 2
    assert Incident.objects.get().llm_cost_usd == ONE_CALL


def test_529_overload_throughout_falls_back_to_the_rules_at_no_cost(anthropic_api, unsure_incident):
    anthropic_api.script = [(529, error("overloaded_error", "Overloaded"), fast_retry(), 0)] * 3
    assert second_opinion(unsure_incident.pk).startswith("fallback: OverloadedError")
    assert len(anthropic_api.requests) == 3  # the first try and two retries
    incident = Incident.objects.get()
    assert (incident.category, incident.classified_by, incident.llm_cost_usd) == ("other", "rules", 0)


def test_a_timeout_falls_back_to_the_rules(anthropic_api, unsure_incident, settings):
    settings.LLM_MAX_RETRIES = 0
    anthropic_api.script = [(200, tool_answer(GOOD), {}, 2.0)]
    assert second_opinion(unsure_incident.pk).startswith("fallback: APITimeoutError")
    assert Incident.objects.get().classified_by == "rules"


def test_malformed_json_falls_back_to_the_rules(anthropic_api, unsure_incident, settings):
    settings.LLM_MAX_RETRIES = 0
    anthropic_api.script = [(200, b'{"id": "msg_x", "content": [', {}, 0)]
    assert second_opinion(unsure_incident.pk).startswith("fallback: JSONDecodeError")
    assert Incident.objects.get().classified_by == "rules"


def test_an_answer_outside_the_schema_falls_back_but_its_tokens_are_paid(anthropic_api, unsure_incident):
    anthropic_api.script = [(200, tool_answer({**GOOD, "category": "vibes"}), {}, 0)]
    assert second_opinion(unsure_incident.pk).startswith("fallback: answer outside the schema")
    incident = Incident.objects.get()
    assert (incident.category, incident.classified_by, incident.llm_cost_usd) == ("other", "rules", ONE_CALL)


def test_answers_are_cached_by_fingerprint(anthropic_api, unsure_incident, client, ingest_path):
    anthropic_api.script = [(200, tool_answer(GOOD), {}, 0)]
    assert second_opinion(unsure_incident.pk) == "classified"
    Incident.objects.filter(pk=unsure_incident.pk).update(status="resolved")
    body = {"title": "Checkout journey is red on https://chat.example.org", "description": "contact ops@example.org, 10.0.0.7"}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    again = Incident.objects.exclude(pk=unsure_incident.pk).get()
    assert second_opinion(again.pk) == "classified"
    assert len(anthropic_api.requests) == 1  # the second came from the cache, free
    again.refresh_from_db()
    assert (again.category, again.llm_cost_usd) == ("availability", 0)


def test_no_key_budget_reached_or_sure_rules_mean_no_call(anthropic_api, unsure_incident, settings):
    settings.LLM_MONTHLY_BUDGET_USD = 0.0001
    Incident.objects.filter(pk=unsure_incident.pk).update(llm_cost_usd=Decimal("0.001"))
    assert second_opinion(unsure_incident.pk) == "budget reached"
    settings.LLM_MONTHLY_BUDGET_USD = 50
    Incident.objects.filter(pk=unsure_incident.pk).update(classification_confidence=0.95)
    assert second_opinion(unsure_incident.pk) == "rules sure"
    settings.ANTHROPIC_API_KEY = ""
    assert second_opinion(unsure_incident.pk) == "not configured"
    assert anthropic_api.requests == []


@pytest.mark.parametrize(
    ("text", "kept", "gone"),
    [
        ("mail alice.smith+ops@corp.example.com now", "mail", "alice.smith"),
        ("call +44 20 7946 0958 or (415) 555-0100", "call", "7946"),
        ("from 192.168.10.4 and 2001:db8::8a2e:370:7334", "from", "192.168"),
        ("key sk-ant-api03-AbCdEfGhIjKlMnOp and ghp_0123456789abcdefABCD", "key", "AbCdEf"),
        ("Authorization: Bearer eyJhbGciOi.eyJzdWIiOi.SflKxwRJSM", "Authorization", "eyJ"),
        ("password=hunter2 p95 2.4x at 12:30:45", "p95 2.4x at 12:30:45", "hunter2"),
        ('{"password": "hunter2", "host": "db-01"}', '"password": "[SECRET]", "host": "db-01"', "hunter2"),
        ('{"db_password":"hunter2","api_key":"k-123"}', '"db_password":"[SECRET]","api_key":"[SECRET]"', "k-123"),
        ("DB_PASSWORD: hunter2 and AWS_SECRET_ACCESS_KEY=abc/def", "DB_PASSWORD: [SECRET]", "abc/def"),
        ("dsn postgres://app:s3cr3t@db-01:5432/chat", "postgres://[CREDENTIALS]@db-01:5432/chat", "s3cr3t"),
        ("clone https://ghs_token123@github.com/acme/repo", "https://[CREDENTIALS]@github.com/acme/repo", "token123"),
        ("aws wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY in env", "aws [TOKEN] in env", "wJalrXUtnFEMI"),
        ("routing e93facc04764012d7bfb002500d5d1a6 used", "routing [TOKEN] used", "e93facc0"),
        ("n 9fK2pQ7xL0vR3mZ8wT5yB1cN6hJ4dG in cfg", "n [TOKEN] in cfg", "9fK2pQ7x"),
        # What a classifier needs stays: model names, pod names, metrics, class names.
        ("Meta-Llama-3.1-70B-Instruct on checkout-7d9f8b6c5d-x2x4q max_tokens: 4096 token_count=12 "
         "GetUserProfileByIdV2Handler", "Meta-Llama-3.1-70B-Instruct on checkout-7d9f8b6c5d-x2x4q max_tokens: 4096 "
         "token_count=12 GetUserProfileByIdV2Handler", "[SECRET]"),
    ],
)
def test_redaction(text, kept, gone):
    cleaned = redact(text)
    assert kept in cleaned and gone not in cleaned


def test_labels_are_redacted_key_by_key(anthropic_api, client, ingest_path):
    """A label named like a secret goes whatever it holds; other labels are redacted as
    text; what the classifier needs stays."""
    body = {"title": "Checkout journey is red", "labels": {
        "password": "hunter2", "authToken": "short", "DB_PASSWORD": "p", "client_secret": "cs",
        "dsn": "postgres://app:s3cr3t@db-01:5432/chat", "tokens_used": "4096", "model": "llama-3-70b",
    }}
    client.post(ingest_path("generic"), data=body, content_type="application/json")
    anthropic_api.script = [(200, tool_answer(GOOD), {}, 0)]

    assert second_opinion(Incident.objects.get().pk) == "classified"

    prompt = anthropic_api.requests[0]["json"]["messages"][0]["content"]
    for secret in ("hunter2", '"short"', '"p"', '"cs"', "s3cr3t"):
        assert secret not in prompt
    for kept in ('"password": "[SECRET]"', '"authToken": "[SECRET]"', '"dsn": "postgres://[CREDENTIALS]@db-01:5432/chat"',
                 '"tokens_used": "4096"', '"model": "llama-3-70b"'):
        assert kept in prompt
