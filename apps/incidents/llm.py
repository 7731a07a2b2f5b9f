"""Claude as a second opinion on classification, through the `anthropic` SDK.

Used only when ANTHROPIC_API_KEY is set and the rules are unsure; never on the
ingest path (a Celery task calls it after the incident is committed).  Structured
output comes from a forced tool call whose input must match TOOL_SCHEMA; anything
else (bad JSON, out-of-schema answer, timeout, overload after the SDK's retries)
leaves the rules' verdict in place and is logged.  Text is redacted first.
"""

import json
import logging
from dataclasses import dataclass
from decimal import Decimal

import jsonschema
from django.conf import settings

from .classification import Classification
from .models import Category, Severity
from .redaction import redact, redact_labels

log = logging.getLogger(__name__)

TOOL_NAME = "record_classification"
TOOL_SCHEMA = {
    "type": "object",
    "properties": {
        "category": {"type": "string", "enum": Category.values},
        "severity": {"type": "string", "enum": Severity.values},
        "model": {"type": "string", "maxLength": 100, "description": "Affected LLM and version, or empty."},
        "environment": {"type": "string", "maxLength": 50, "description": "prod, staging, dev… or empty."},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "rationale": {"type": "string", "maxLength": 300, "description": "One line."},
    },
    "required": ["category", "severity", "confidence", "rationale"],
    "additionalProperties": False,
}

PROMPT = """You classify alerts for an on-call team running LLM-powered services.
Categories: latency, error_rate, quality (accuracy, hallucination, toxicity), cost (token
spend, quota), infrastructure (GPU memory, temperature, OOM), availability, security, other.
Severity: critical (users hurt now), high, medium, low, info.
A rule-based classifier said: {rules}.
Classify this alert by calling {tool}.

Title: {title}
Description: {description}
Labels: {labels}"""


@dataclass(frozen=True)
class Usage:
    input_tokens: int
    output_tokens: int

    @property
    def cost(self) -> Decimal:
        per_token = Decimal(1) / Decimal(1_000_000)
        return (
            self.input_tokens * Decimal(str(settings.LLM_PRICE_INPUT_PER_MTOK))
            + self.output_tokens * Decimal(str(settings.LLM_PRICE_OUTPUT_PER_MTOK))
        ) * per_token


class LLMUnavailable(Exception):
    """No usable answer; `usage` says what was spent getting there."""

    def __init__(self, reason: str, usage: Usage | None = None):
        super().__init__(reason)
        self.usage = usage


def ask(prompt: str, *, tool: str, description: str, schema: dict, max_tokens: int) -> tuple[dict, Usage]:
    """One forced call of `tool`; its input, validated against `schema`.  The caller
    redacts the prompt.  Also used by apps/assist (summaries, postmortem drafts)."""
    # Imported on first use, not at the top: the SDK takes about 3 s of CPU to import
    # (more than the rest of Django and our apps), which every web and worker process
    # paid at start, though only workers with ANTHROPIC_API_KEY set ever call Claude.
    import anthropic

    client = anthropic.Anthropic(
        api_key=settings.ANTHROPIC_API_KEY,
        base_url=settings.ANTHROPIC_BASE_URL or None,
        timeout=settings.LLM_TIMEOUT_SECONDS,
        max_retries=settings.LLM_MAX_RETRIES,  # the SDK backs off on 429 and 5xx (529 overloaded)
    )
    try:
        message = client.messages.create(
            model=settings.LLM_MODEL,
            max_tokens=max_tokens,
            tools=[{"name": tool, "description": description, "input_schema": schema}],
            tool_choice={"type": "tool", "name": tool},
            messages=[{"role": "user", "content": prompt}],
        )
    # APIError: timeouts, connection errors, 4xx/5xx after the retries.  ValueError: a
    # body that is not JSON, which the SDK lets through as json's own error.
    except (anthropic.APIError, ValueError) as exc:
        raise LLMUnavailable(f"{type(exc).__name__}: {exc}") from None
    usage = Usage(message.usage.input_tokens, message.usage.output_tokens)
    answer = next((block.input for block in message.content if block.type == "tool_use"), None)
    try:
        jsonschema.validate(answer, schema)
    except jsonschema.ValidationError as exc:
        raise LLMUnavailable(f"answer outside the schema: {exc.message}", usage) from None
    return answer, usage


def classify(title: str, description: str, labels: dict[str, str], rules: Classification) -> tuple[Classification, Usage]:
    prompt = PROMPT.format(
        rules=f"{rules.category}/{rules.severity} ({rules.rationale})",
        tool=TOOL_NAME,
        title=redact(title),
        description=redact(description)[:4000],
        labels=json.dumps(redact_labels(labels), sort_keys=True)[:2000],
    )
    answer, usage = ask(
        prompt, tool=TOOL_NAME, description="Record the alert's classification.", schema=TOOL_SCHEMA, max_tokens=400
    )
    return (
        Classification(
            category=answer["category"],
            severity=answer["severity"],
            confidence=float(answer["confidence"]),
            rationale=answer["rationale"],
            model=answer.get("model", ""),
            environment=answer.get("environment", ""),
        ),
        usage,
    )
