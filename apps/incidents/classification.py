"""The rule-based classifier: what an alert is about, how bad, which model and where.

It runs on every new incident, needs nothing outside this process, and is the
answer whenever the LLM is not configured, unsure of itself, over budget or down.
Rules, first match wins:

0. The admins' own rules (ClassificationRule, apps/incidents/classification_rules.py):
   what the first matching one sets wins; what it leaves empty, the rules below decide.
1. An explicit `category` label.
2. Keywords (KEYWORDS) in the alert's name and title, then, only if those match
   nothing, in its description, most specific category first (security before
   infrastructure before cost, quality, latency, availability, errors): an OOM
   "error" is a GPU problem, a failing probe an outage.
3. Failing that, label names that only one kind of alert carries (`mountpoint`,
   `consumergroup`, ...).
4. Severity: a `severity` (or `priority`) label wins, then "critical" or "warning"
   in the alert's name or title; otherwise thresholds read from the text set it for
   the documented LLM metrics (latency vs baseline, hallucination / error rates,
   cost spikes, quota time left, GPU memory and temperature) and wording for the
   rest ("out of disk space", "filling up", "expires in", "not ready", "panic").
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


# (category, pattern), most specific first; a category may appear twice when part of
# its vocabulary must beat a later category and part must not.  Each pattern is one
# alternation compiled once, here: this runs on ingest for every new incident.
KEYWORDS = [
    # First: a security event often also reads as a failure ("login failures", "access
    # denied", "blocked requests") or as a resource ("shell in container"), and it is
    # the one that must not be filed as routine.
    (Category.SECURITY, _words(
        r"prompt[ _-]?(?:injection|extraction|leak)", r"jailbreak", r"unauthori[sz]ed", r"(?:api[ _-]?)?keys? (?:leak|expos)",
        r"secrets? (?:leak|expos)", r"credential", r"brute[ -]?force", r"suspicious", r"pii", r"exfiltrat",
        r"cve-\d", r"malicious", r"waf\b", r"forbidden spike", r"security", r"audit", r"intrusion", r"attack",
        r"injection", r"firewall", r"policy violations?",
        # Authentication and access: failed logins, denials, 401/403 spikes, secrets lying about.
        r"(?:login|logon|sign[ -]?in|auth\w*) (?:attempts? )?(?:fail|errors?|denied|reject)",
        r"(?:failed|invalid|bad) (?:logins?|logons?|sign[ -]?ins?|passwords?|auth\w*)",
        r"deni(?:ed|als?)\b", r"denies\b", r"disallowed", r"40[13]s\b", r"(?:http|status|code)\W{0,3}40[13]\b",
        r"passwords?", r"private keys?", r"non[ -]?expiring", r"revoked", r"privilege",
        r"blocked (?:requests?|connections?|traffic|ips?)", r"(?:requests?|connections?|traffic) (?:\w+ )?blocked",
        r"blocking (?:\w+ )?requests",
        # Runtime detections (Falco and the like): something ran that should not have.
        r"(?:container|sandbox) escapes?", r"shell (?:\w+ )?in (?:a )?container",
        r"(?:launch|execut|spawn)\w* (?:\w+ ){0,4}in (?:a )?container", r"fileless", r"tamper", r"reverse shell",
        r"crypto ?min(?:er|ing)", r"rootkit", r"ptrace", r"setuid", r"sensitive (?:files?|data)",
    )),
    # Before cost, latency and errors: an OOM "error", a full disk's failed writes, a
    # namespace ResourceQuota (capacity, not money) and KV-cache preemptions are all
    # about a resource running out or hardware going bad.
    (Category.INFRASTRUCTURE, _words(
        # Compute and memory.
        r"gpu", r"cuda", r"vram", r"nvidia", r"xid", r"oom", r"out of memory", r"oomkill", r"cpus?\b", r"memory",
        r"max ?memory", r"heap\b", r"swap", r"load (?:average|per core)", r"saturat", r"overload", r"pressure",
        r"nodes? not ready", r"context switch", r"goroutines", r"(?:cpu|container|cgroup) (?:\w+ ){0,2}throttl",
        r"throttl\w* (?:of )?cpu", r"kv[ -]?cache", r"preempt",
        # Storage: space, inodes, volumes; anything filling up.
        r"disk", r"filesystem", r"inode", r"nvme", r"persistent ?volumes?", r"volumes? (?:usage|full|filling|out of)",
        r"out of (?:disk )?space", r"no space left", r"(?:low|free) (?:disk )?space", r"fill(?:s|ing)? up",
        r"(?:almost|nearly|near) (?:full|empty)",
        # Capacity and limits.
        r"capacity", r"overcommit", r"maxed out", r"max(?:imum)? replicas", r"(?:namespace|resource) ?quota",
        r"file descriptors?", r"open files", r"too many (?:connections|open files|processes|threads|pods)",
        r"connection (?:slots?|pool|limit)",
        # Hardware, power, time and the network underneath.
        r"temperature", r"thermal", r"too hot", r"overheat", r"ecc\b", r"(?:un)?correctable (?:\w+ )?errors", r"edac",
        r"double[ -]bit", r"row[ -]?remap", r"pcie", r"nvlink", r"raid\b", r"smart (?:device|status|errors?)",
        r"media errors", r"wear ?out", r"ipmi", r"ups\b", r"battery", r"power (?:supply|loss|failure|outage|draw|usage)",
        r"clocks?\b", r"ntp\b", r"conntrack", r"network interface", r"bond(?:ing)? degraded", r"bandwidth",
        r"network (?:throughput|traffic)", r"(?:network|interface|receive|transmit|nic) (?:\w+ )?errors",
        r"packet loss", r"dropped packets", r"packets? dropped",
    )),
    # Before latency: "tokens per second" reads as speed, but prompt or input token
    # volume is what gets billed.  "Error budget" is an SLO term, not money.
    (Category.COST, _words(
        r"tokens? (?:spend|cost|usage|budget|volume|consumption|remaining|left)", r"cost", r"spend", r"(?<!error )budget",
        r"quota", r"billing", r"billed", r"credits?", r"pricing", r"tokens? per (?:day|hour) over",
        r"(?:prompt|completion|input|output|generat\w*|total) tokens? (?:\w+ )?(?:usage|volume|count|consumption|spike)",
        r"(?:prompt|input) length",
    )),
    (Category.QUALITY, _words(
        r"hallucinat", r"accuracy", r"toxic", r"groundedness", r"faithfulness", r"eval(?:uation)? score",
        r"quality", r"drift", r"refusals?", r"relevan(?:ce|cy)", r"bleu", r"rouge", r"judge", r"bias",
        r"answer correctness", r"thumbs[ -]down", r"citations?", r"(?:user|negative|customer) feedback", r"coheren",
        r"context (?:precision|recall)", r"sentiment", r"golden (?:set|dataset)",
    )),
    # Replication and consumer lag count as latency (data arriving late, not lost), and
    # so do queues and backlogs: work waiting is work slow.
    (Category.LATENCY, _words(
        r"latency", r"p9[059]", r"ttft", r"time to first token", r"slow", r"response time", r"tokens per second",
        r"tokens/s", r"duration", r"delay", r"time per (?:\w+ )?token", r"inter[ -]?token", r"lag(?:s|ging)?\b",
        r"behind\b", r"hang(?:s|ing)?\b", r"hung\b",
        r"queue(?:d|ing)? (?:\w+ )?(?:time|wait|duration|size|length|depth|growing|too large|high)", r"backlog",
        r"(?:requests?|jobs?|tasks?|messages?) (?:\w+ )?(?:waiting|pending)",
        r"(?:waiting|pending) (?:\w+ )?(?:requests?|tasks?|jobs?|messages?)", r"waiting time",
    )),
    # Before errors: a probe or health check that "fails", a backend with no healthy
    # upstream, a lost leader all say the thing is not there, whatever failed on the way.
    (Category.AVAILABILITY, _words(
        r"unreachable", r"unavailable", r"availability", r"health ?checks?", r"unhealthy", r"not healthy",
        r"not responding", r"unresponsive", r"crash ?loop", r"crash(?:ed|es)?\b", r"restart(?:ed|s|ing)?\b",
        r"outage", r"offline", r"instance ?down", r"targets? ?(?:down|missing|disappeared)", r"probes?\b",
        r"replicas?\b", r"under[ -]?replicated", r"unassigned", r"not ready", r"non[ -]?ready", r"readiness",
        r"not scheduled", r"unschedulable", r"waiting state", r"not running", r"halted", r"rollout stuck",
        r"not progressing", r"heartbeat", r"flapping", r"disconnected", r"not connected", r"no connection",
        r"(?:no|lost|without) (?:a )?leader", r"leader (?:lost|election|changes)", r"quorum", r"split[ -]?brain",
        r"insufficient (?:members|replicas|nodes)", r"(?:missing|no) (?:master|primary)\b", r"replication (?:\w+ )?broken",
        r"no (?:alive|healthy|available|ready|live)\b", r"no (?:queue )?consumers?\b", r"sealed",
        r"(?:cluster (?:health |status )?|status )(?:red|yellow)\b", r"cool(?:ed|ing)?[ -]?down",
        # An expired certificate makes the service unreachable (a revoked one is security, above).
        r"cert(?:ificate)?s? (?:\S+ ){0,5}?expir",
    )),
    (Category.ERROR_RATE, _words(
        r"error rate", r"errors?", r"[45]xx", r"50[0-4]s?\b", r"exceptions?", r"failure rate", r"failed requests",
        r"fail(?:s|ed|ing|ures?)?\b", r"unsuccessful", r"(?:did not|not) complet\w*", r"timeouts?", r"tim(?:ed|ing) out",
        r"retr(?:y|ies)", r"panic", r"reject", r"abort", r"rollbacks?", r"dead ?locks?", r"unroutable",
        r"error[ -]budget", r"burn(?:ing)? rate",
        # Rate limiting by an upstream (provider 429s, ACME): the requests fail.
        r"rate[ -]?limit", r"429s?\b", r"too many requests", r"(?:upstream|provider) (?:\w+ )?throttl",
        # Work thrown away on the way: requests, spans, samples, alerts.
        r"(?:drop|discard|refus)(?:ed|ping|ing|s)? (?:\w+ ){0,2}"
        r"(?:requests?|spans?|samples?|messages?|events?|logs?|metrics?|traces?|alerts?|notifications?|connections?)",
        r"(?:requests?|spans?|samples?|messages?|events?|connections?) (?:\w+ )?(?:dropped|discarded|terminated|refused)",
        r"terminated (?:\w+ ){0,3}requests?",
    )),
    # After errors: "down", "missing" and "killed" are generic ("error rate down", "missing field").
    (Category.AVAILABILITY, _words(
        r"down\b", r"no data", r"no (?:new )?(?:\w+ )?(?:metrics|samples|documents)\b", r"absent", r"missing",
        r"disappeared", r"killed",
    )),
    # Last: notices that name no fault (version drift, changed configuration, the
    # always-firing Watchdog), so that a description's "can lead to failure" does not
    # make them errors.
    (Category.OTHER, _words(
        r"versions? (?:mismatch|drift|deviation|skew|changed)", r"(?:different|mismatch\w*|inconsistent) versions?",
        r"config(?:uration)? (?:has )?changed", r"watchdog", r"dead ?man", r"inhibit", r"always fir(?:e|ing)",
    )),
]

# Label names that only one kind of alert carries, for when the words say nothing:
# a mount point or volume claim is storage, a consumer group is lag, a Kubernetes
# Job's name (`job_name`; not `job`, the scrape job every Prometheus alert has) or an
# error type is a failed run.  Same order as KEYWORDS.
LABEL_HINTS = [
    (Category.INFRASTRUCTURE, frozenset({"mountpoint", "fstype", "persistentvolumeclaim", "gpu"})),
    (Category.COST, frozenset({"gen_ai_token_type", "token_type"})),
    (Category.LATENCY, frozenset({"consumergroup", "consumer_group"})),
    (Category.AVAILABILITY, frozenset({"probe", "healthcheck"})),
    (Category.ERROR_RATE, frozenset({"job_name", "cronjob", "error_type", "exception", "exception_status"})),
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
HOURS_LEFT = re.compile(
    r"(?:within|in|next)\s+(?:less than\s+|under\s+)?" + _NUMBER + r"\s*(h|hours?|m|min|minutes?)\b", re.IGNORECASE
)

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
    # Alert names are CamelCase (KubeNodeNotReady) or snake_case (llm_too_slow): split
    # them so that words match.
    head = _CAMEL.sub(" ", " ".join([labels.get("alertname", "").replace("_", " "), title]))
    body = _CAMEL.sub(" ", description)
    text = f"{head} {body}"
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
        category, confidence, why = _category(head, body, labels)

    severity, reason = _severity(category, head, text, labels)
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


def _category(head: str, body: str, labels: dict[str, str]) -> tuple[str, float, str]:
    # The alert's name and title say what it is about; the description adds causes,
    # consequences and names ("no healthy upstream ... connection attempts failed",
    # "service billing-api"), so it is read only when the name and title match nothing.
    for part, where, confidence in ((head, "name or title", 0.75), (body, "description", 0.65)):
        for candidate, pattern in KEYWORDS:
            if found := pattern.search(part):
                return candidate, confidence, f"'{found.group(0)}' in the {where}"
    for candidate, names in LABEL_HINTS:
        if found := next((name for name in labels if name.lower() in names), None):
            return candidate, 0.5, f"label '{found}'"
    return Category.OTHER, 0.3, "no rule matched"


# Syslog priorities (Falco's among them) that events.SEVERITY_ALIASES does not list.
SYSLOG_SEVERITY = {"notice": Severity.LOW, "alert": Severity.CRITICAL, "emerg": Severity.CRITICAL, "debug": Severity.INFO}
# The rule's author said so in its name or title ("...TemperatureCritical", "HeapUsageWarning").
SEVERITY_WORDING = re.compile(r"(?<!non-)(?<!non )\b(critical|warning)\b", re.IGNORECASE)
# Percentages that are what is left, not what is used ("< 10% left", "8.3% is available").
PERCENT_FREE = re.compile(_NUMBER + r"\s*%\)?\s*(?:is\s+|are\s+)?(?:left|free|available|remaining)", re.IGNORECASE)
# A resource forecast to run out: how soon decides, as for quotas.
RUNNING_OUT = re.compile(r"\bfill(?:s|ing)? up|\bwill fill|\brun(?:s|ning)? out|\bpredicted to", re.IGNORECASE)
# Not a warning about a trend: the resource is gone or the hardware lost data.
EXHAUSTED = re.compile(
    r"\boom|(?<!running )out of memory|\bxid|\bexhaust|(?<!almost )\bout of (?:disk )?space|\bno space left|\buncorrectable|"
    r"\bdouble[ -]bit|\b(?:disk|memory|pid) ?pressure",  # kubelet evicts pods under node pressure
    re.IGNORECASE,
)
# "Nearly full" with no figure: about as full as 90% used.
NEARLY_FULL = re.compile(r"\b(?:almost|nearly|near) full\b", re.IGNORECASE)
# Security: the secret or the boundary is already gone (critical), versus failed
# attempts that were refused (medium: as often a misconfigured client as an attack).
COMPROMISED = re.compile(r"leak|expos|exfiltrat|revoked|escape|privilege escalation", re.IGNORECASE)
REFUSED_ATTEMPTS = re.compile(
    r"\b(?:auth\w*|login|logon|sign[ -]?in) (?:attempts? )?failures?|\bfailed (?:logins?|auth\w*)", re.IGNORECASE
)
# Availability short of down: some capacity still serves.
DEGRADED = re.compile(r"\bnot ready|\bnon[ -]?ready|\bdegraded|\byellow\b", re.IGNORECASE)
# Change notices (category other): something was added or changed, nothing is broken.
CHANGE_NOTICE = re.compile(r"\b(?:added|removed|created|deleted|changed|updated|deviations?)\b", re.IGNORECASE)
# Quality scores quoted as "fell from 91% to 84%": the drop in points is the signal.
PERCENT_DROP = re.compile(r"from\s+" + _NUMBER + r"\s*%\s+to\s+" + _NUMBER + r"\s*%", re.IGNORECASE)


def _severity(category: str, head: str, text: str, labels: dict[str, str]) -> tuple[str, str]:
    raw = labels.get("severity") or labels.get("priority")
    if given := normalise_severity(raw) or SYSLOG_SEVERITY.get(str(raw or "").strip().lower()):
        return given, f"severity label '{raw}'"
    if found := SEVERITY_WORDING.search(head):
        return normalise_severity(found.group(1)), f"'{found.group(1)}' in the alert"
    lowered = text.lower()
    percents = [float(p) for p in PERCENT.findall(text)]
    if category == Category.LATENCY and (ratios := [float(r) for r in RATIO.findall(text)]):
        ratio = max(ratios)
        return _pick(ratio, [(3, Severity.CRITICAL), (2, Severity.HIGH), (1.5, Severity.MEDIUM)], Severity.LOW), f"{ratio}x baseline"
    if category == Category.QUALITY and (drop := PERCENT_DROP.search(text)):
        points = float(drop.group(1)) - float(drop.group(2))
        return _pick(points, [(10, Severity.CRITICAL), (5, Severity.HIGH), (2, Severity.MEDIUM)], Severity.LOW), f"down {points:g} points"
    if category == Category.QUALITY and percents:
        rate = max(percents)
        if rate > 50:
            # A bad-answer *rate* over half is not what such alerts report: this is a
            # score or accuracy level ("score is 74% of baseline"), worth a look.
            return Severity.MEDIUM, f"score {rate}%"
        return _pick(rate, [(10, Severity.CRITICAL), (5, Severity.HIGH), (2, Severity.MEDIUM)], Severity.LOW), f"{rate}%"
    if category == Category.ERROR_RATE:
        if "panic" in lowered:
            return Severity.CRITICAL, "panic"
        if percents:
            rate = max(percents)
            return _pick(rate, [(10, Severity.CRITICAL), (5, Severity.HIGH), (1, Severity.MEDIUM)], Severity.LOW), f"error rate {rate}%"
    if category == Category.COST:
        if found := HOURS_LEFT.search(text):
            hours = _hours(found)
            return _pick(-hours, [(-1, Severity.CRITICAL), (-4, Severity.HIGH), (-24, Severity.MEDIUM)], Severity.LOW), f"quota gone in {hours:g} h"
        if percents:
            rate = max(percents)
            return _pick(rate, [(100, Severity.CRITICAL), (50, Severity.HIGH), (5, Severity.MEDIUM)], Severity.LOW), f"spend up {rate}%"
        return Severity.MEDIUM, "cost alert"
    if category == Category.INFRASTRUCTURE:
        if degrees := [float(d) for d in DEGREES.findall(text)]:
            value = max(degrees)
            return _pick(value, [(90, Severity.CRITICAL), (85, Severity.HIGH), (80, Severity.MEDIUM)], Severity.LOW), f"{value} °C"
        # A forecast ("predicted to run out of space within the next 24 hours"): hours
        # away pages, a day or days away is a warning with time to act.
        forecast = RUNNING_OUT.search(text)
        if forecast and (found := HOURS_LEFT.search(text)):
            hours = _hours(found)
            return (Severity.CRITICAL if hours <= 4 else Severity.MEDIUM), f"full in {hours:g} h"
        if found := EXHAUSTED.search(text):
            return Severity.CRITICAL, f"'{found.group(0)}'"
        if forecast:
            return Severity.MEDIUM, f"'{forecast.group(0).strip()}' (a forecast)"
        if used := percents + [100 - float(p) for p in PERCENT_FREE.findall(text)]:
            value = max(used)
            return _pick(value, [(95, Severity.CRITICAL), (90, Severity.HIGH), (80, Severity.MEDIUM)], Severity.LOW), f"{value:g}% used"
        if found := NEARLY_FULL.search(text):
            return Severity.HIGH, f"'{found.group(0)}'"
    if category == Category.AVAILABILITY:
        if "expir" in lowered and "expired" not in lowered:
            # A certificate that will expire: critical only within the day.
            found = HOURS_LEFT.search(text)
            if found and _hours(found) <= 24:
                return Severity.CRITICAL, f"expires in {_hours(found):g} h"
            return Severity.MEDIUM, "certificate expiring"
        if found := DEGRADED.search(text):
            return Severity.MEDIUM, f"'{found.group(0)}' (degraded, not down)"
        return Severity.CRITICAL, "service down"
    if category == Category.SECURITY:
        if COMPROMISED.search(lowered):
            return Severity.CRITICAL, "security event"
        if REFUSED_ATTEMPTS.search(lowered):
            return Severity.MEDIUM, "refused attempts"
        return Severity.HIGH, "security event"
    if category == Category.OTHER and (found := CHANGE_NOTICE.search(head)):
        return Severity.INFO, f"'{found.group(0)}' (a change notice)"
    return Severity.MEDIUM, ""


def _hours(found: re.Match) -> float:
    return float(found.group(1)) / (60 if found.group(2).lower().startswith("m") else 1)


def _pick(value: float, steps: list[tuple[float, str]], otherwise: str) -> str:
    for threshold, severity in steps:
        if value >= threshold:
            return severity
    return otherwise
