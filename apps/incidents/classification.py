"""The rule-based classifier: what an alert is about, how bad, which model and where.

It runs on every new incident, needs nothing outside this process, and is the
answer whenever the LLM is not configured, unsure of itself, over budget or down.
Rules, first match wins:

0. The admins' own rules (ClassificationRule, apps/incidents/classification_rules.py):
   what the first matching one sets wins; what it leaves empty, the rules below decide.
1. An explicit `category` label.
2. Keywords in the alert's name, title and description, most specific first
   (security before infrastructure before cost, quality, latency, errors,
   availability): an OOM "error" is a GPU problem, a quota "error" a cost one.
3. Thresholds read from the text or labels set the severity for the documented
   LLM metrics (latency vs baseline, hallucination / error rates, cost spikes,
   quota time left, GPU memory and temperature); a `severity` label wins.
"""

import re
from dataclasses import dataclass

from . import classification_rules
from .events import normalise_severity
from .models import Category, Severity


@dataclass(frozen=True)
class Classification:
    category: str
    severity: str
    confidence: float
    rationale: str
    model: str = ""
    environment: str = ""

    def incident_fields(self, by: str = "rules") -> dict:
        """This verdict as the Incident fields that hold it."""
        return {
            "category": self.category,
            "llm_model": self.model[:100],
            "environment": self.environment[:50],
            "classified_severity": self.severity,
            "classification_confidence": self.confidence,
            "classification_rationale": self.rationale[:300],
            "classified_by": by,
        }


def _words(*patterns: str) -> re.Pattern:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")", re.IGNORECASE)


# (category, pattern), most specific first.
KEYWORDS = [
    (Category.SECURITY, _words(
        r"prompt[ _-]?injection", r"jailbreak", r"unauthori[sz]ed", r"(?:api[ _-]?)?keys? (?:leak|expos)",
        r"secrets? (?:leak|expos)", r"credential", r"brute[ -]?force", r"suspicious", r"pii", r"exfiltrat",
        r"cve-\d", r"malicious", r"waf", r"forbidden spike", r"login failures",
    )),
    (Category.INFRASTRUCTURE, _words(
        r"gpu", r"cuda", r"vram", r"nvidia", r"xid", r"oom", r"out of memory", r"oomkill", r"temperature",
        r"thermal", r"disk", r"filesystem", r"inode", r"cpu (?:usage|load|throttl)", r"high cpu", r"memory (?:usage|pressure)",
        r"node (?:not ready|pressure)", r"kubelet", r"swap", r"load average", r"nvme", r"ecc",
    )),
    (Category.COST, _words(
        r"token (?:spend|cost|usage|budget)", r"cost", r"spend", r"budget", r"quota", r"billing", r"credits?",
        r"tokens? per (?:day|hour) over", r"rate[ -]limit(?:ed)? (?:by|from) (?:provider|openai|anthropic)",
    )),
    (Category.QUALITY, _words(
        r"hallucinat", r"accuracy", r"toxic", r"groundedness", r"faithfulness", r"eval(?:uation)? score",
        r"quality", r"drift", r"refusal rate", r"relevance", r"bleu", r"rouge", r"judge score", r"bias",
        r"answer correctness", r"thumbs[ -]down",
    )),
    (Category.LATENCY, _words(
        r"latency", r"p9[059]", r"ttft", r"time to first token", r"slow", r"response time", r"tokens per second",
        r"tokens/s", r"queue (?:time|wait)", r"duration",
    )),
    (Category.ERROR_RATE, _words(
        r"error rate", r"errors?", r"5xx", r"50[0-4]s?", r"exceptions?", r"failure rate", r"failed requests",
        r"timeouts?", r"retries", r"panic",
    )),
    (Category.AVAILABILITY, _words(
        r"down", r"unreachable", r"unavailable", r"health ?check", r"not responding", r"no data", r"absent",
        r"heartbeat", r"crash ?loop", r"restarting", r"outage", r"offline", r"instance ?down", r"target ?down",
        r"replicas? (?:mismatch|unavailable)", r"certificate (?:expir|invalid)",
    )),
]

MODEL_NAME = re.compile(
    r"\b(gpt-[\w.-]+|o[134](?:-mini)?|claude[\w.-]*|llama[\w.-]*|mistral[\w.-]*|mixtral[\w.-]*|gemini[\w.-]*|"
    r"qwen[\w.-]*|phi-[\w.-]+|deepseek[\w.-]*|command-r[\w.-]*)",
    re.IGNORECASE,
)
ENVIRONMENT = re.compile(r"\b(prod(?:uction)?|staging|stage|dev(?:elopment)?|test|qa|canary)\b", re.IGNORECASE)
ENV_NAMES = {"production": "prod", "stage": "staging", "development": "dev"}

_NUMBER = r"(\d+(?:\.\d+)?)"
RATIO = re.compile(_NUMBER + r"\s*(?:x|×|times)\b", re.IGNORECASE)
PERCENT = re.compile(_NUMBER + r"\s*%")
DEGREES = re.compile(_NUMBER + r"\s*(?:°\s*)?C\b")
HOURS_LEFT = re.compile(r"(?:within|in|next)\s+" + _NUMBER + r"\s*(h|hours?|m|min|minutes?)\b", re.IGNORECASE)

_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def classify(
    title: str, description: str = "", labels: dict[str, str] | None = None, source: str = ""
) -> Classification:
    """The admins' first matching rule over the built-in verdict."""
    labels = labels or {}
    verdict = classify_builtin(title, description, labels)
    raw = " ".join([labels.get("alertname", ""), title, description])
    rule = classification_rules.first_match((raw, _CAMEL.sub(" ", raw)), labels, source)
    if rule is None:
        return verdict
    return Classification(
        category=rule.category or verdict.category,
        severity=rule.severity or verdict.severity,
        confidence=rule.confidence,
        rationale=f"admin rule '{rule.name}'"[:300],
        model=(rule.model or verdict.model)[:100],
        environment=(rule.environment or verdict.environment)[:50],
    )


def classify_builtin(title: str, description: str = "", labels: dict[str, str] | None = None) -> Classification:
    """The built-in rules alone: pure, no database (bench/classify_eval.py measures these)."""
    labels = labels or {}
    # Alert names are CamelCase (KubeNodeNotReady): split them so that words match.
    text = _CAMEL.sub(" ", " ".join([labels.get("alertname", ""), title, description]))
    model = next((labels[k] for k in ("model", "model_name", "llm_model") if labels.get(k)), "")
    if not model and (found := MODEL_NAME.search(text)):
        model = found.group(1)
    if version := labels.get("model_version"):
        model = f"{model}@{version}" if model else version
    environment = labels.get("env") or labels.get("environment") or ""
    if not environment and (found := ENVIRONMENT.search(text)):
        environment = found.group(1).lower()
    environment = ENV_NAMES.get(environment.lower(), environment.lower())

    labelled = labels.get("category", "").lower()
    if labelled in Category.values:
        category, confidence, why = labelled, 0.95, f"category label '{labelled}'"
    else:
        category, confidence, why = Category.OTHER, 0.3, "no rule matched"
        for candidate, pattern in KEYWORDS:
            if found := pattern.search(text):
                category, confidence, why = candidate, 0.75, f"'{found.group(0)}' in the alert"
                break

    severity, reason = _severity(category, text, labels)
    if reason and category != Category.OTHER:
        confidence = max(confidence, 0.85)
    return Classification(
        category=category,
        severity=severity,
        confidence=confidence,
        rationale=f"{category.replace('_', ' ')} by {why}; severity {severity} by {reason or 'default'}",
        model=model[:100],
        environment=environment[:50],
    )


def _severity(category: str, text: str, labels: dict[str, str]) -> tuple[str, str]:
    if given := normalise_severity(labels.get("severity") or labels.get("priority")):
        return given, f"severity label '{labels.get('severity') or labels.get('priority')}'"
    lowered = text.lower()
    percents = [float(p) for p in PERCENT.findall(text)]
    if category == Category.LATENCY and (ratios := [float(r) for r in RATIO.findall(text)]):
        ratio = max(ratios)
        return _pick(ratio, [(3, Severity.CRITICAL), (2, Severity.HIGH), (1.5, Severity.MEDIUM)], Severity.LOW), f"{ratio}x baseline"
    if category == Category.QUALITY and percents:
        rate = max(percents)
        if "accuracy" in lowered and "drop" not in lowered and rate > 50:
            return Severity.MEDIUM, f"accuracy {rate}%"
        return _pick(rate, [(10, Severity.CRITICAL), (5, Severity.HIGH), (2, Severity.MEDIUM)], Severity.LOW), f"{rate}%"
    if category == Category.ERROR_RATE and percents:
        rate = max(percents)
        return _pick(rate, [(10, Severity.CRITICAL), (5, Severity.HIGH), (1, Severity.MEDIUM)], Severity.LOW), f"error rate {rate}%"
    if category == Category.COST:
        if found := HOURS_LEFT.search(text):
            hours = float(found.group(1)) / (60 if found.group(2).lower().startswith("m") else 1)
            return _pick(-hours, [(-1, Severity.CRITICAL), (-4, Severity.HIGH), (-24, Severity.MEDIUM)], Severity.LOW), f"quota gone in {hours:g} h"
        if percents:
            rate = max(percents)
            return _pick(rate, [(100, Severity.CRITICAL), (50, Severity.HIGH), (5, Severity.MEDIUM)], Severity.LOW), f"spend up {rate}%"
        return Severity.MEDIUM, "cost alert"
    if category == Category.INFRASTRUCTURE:
        if degrees := [float(d) for d in DEGREES.findall(text)]:
            value = max(degrees)
            return _pick(value, [(90, Severity.CRITICAL), (85, Severity.HIGH), (80, Severity.MEDIUM)], Severity.LOW), f"{value} °C"
        if re.search(r"\boom|out of memory|xid", lowered):
            return Severity.CRITICAL, "out of memory"
        if percents:
            value = max(percents)
            return _pick(value, [(95, Severity.CRITICAL), (90, Severity.HIGH), (80, Severity.MEDIUM)], Severity.LOW), f"{value}% used"
    if category == Category.AVAILABILITY:
        return Severity.CRITICAL, "service down"
    if category == Category.SECURITY:
        return (Severity.CRITICAL if re.search(r"leak|expos|exfiltrat", lowered) else Severity.HIGH), "security event"
    return Severity.MEDIUM, ""


def _pick(value: float, steps: list[tuple[float, str]], otherwise: str) -> str:
    for threshold, severity in steps:
        if value >= threshold:
            return severity
    return otherwise
