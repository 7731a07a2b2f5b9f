"""The LLM's second opinion on a new incident's classification (after commit, in a worker).

The rules' verdict stands unless every condition holds: an API key is set, the
rules were unsure (confidence below LLM_CONFIDENCE_THRESHOLD), this month's LLM
spend is under LLM_MONTHLY_BUDGET_USD, and the model answered within the schema.
Answers are cached by fingerprint for an hour, so a flapping alert costs once.

A verdict of another severity than the incident's changes it, and with it the
escalation (services.change_severity: not over a person's choice, not once
someone has acknowledged it).
"""

import logging
from dataclasses import asdict
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import F, Sum
from django.utils import timezone

from apps.audit.services import SYSTEM, Actor

from . import llm, services
from .classification import Classification
from .models import Incident

log = logging.getLogger(__name__)

ACTOR = Actor("llm")


def month_spend():
    start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return Incident.objects.filter(created_at__gte=start).aggregate(total=Sum("llm_cost_usd"))["total"] or 0


def llm_status() -> str:
    """What the portal says about the LLM: 'not configured', 'budget reached' or 'active'."""
    if not settings.ANTHROPIC_API_KEY:
        return "not configured"
    if month_spend() >= settings.LLM_MONTHLY_BUDGET_USD:
        return "budget reached"
    return "active"


def second_opinion(incident_id: int) -> str:
    """Ask the LLM when the rules were unsure; return what happened (for logs and tests)."""
    incident = Incident.objects.filter(pk=incident_id).first()
    if incident is None or incident.classified_by == "llm":
        return "nothing to do"  # gone, or done by an earlier run of this task
    status = llm_status()
    if status != "active":
        return status
    if (incident.classification_confidence or 0) >= settings.LLM_CONFIDENCE_THRESHOLD:
        return "rules sure"
    Incident.objects.filter(pk=incident.pk).update(llm_asked_at=timezone.now())
    cache_key = f"llm-classification:{incident.fingerprint}"
    usage = llm.Usage(0, 0)
    if cached := cache.get(cache_key):
        verdict = Classification(**cached)
    else:
        rules = Classification(
            category=incident.category,
            severity=incident.classified_severity,
            confidence=incident.classification_confidence or 0,
            rationale=incident.classification_rationale,
        )
        try:
            verdict, usage = llm.classify(incident.title, incident.description, incident.labels, rules)
        except llm.LLMUnavailable as exc:
            return fell_back(incident.pk, exc, "LLM classification (the rules' verdict stays)")
        cache.set(cache_key, asdict(verdict), settings.LLM_CACHE_SECONDS)
    with transaction.atomic():
        incident = services.reclassify(
            incident.pk,
            fields=verdict.incident_fields(by="llm"),
            actor=SYSTEM,
            data={
                "by": "llm" if usage.input_tokens else "llm (cached)",
                "category": verdict.category,
                "severity": verdict.severity,
                "cost_usd": str(usage.cost),
            },
        )
        charge(incident.pk, usage)
        if verdict.severity != incident.severity and incident.is_open:
            try:
                services.change_severity(incident.pk, severity=verdict.severity, actor=ACTOR, by="llm")
            except services.TransitionError:
                pass  # resolved since we read it: nothing left to re-plan
    return "classified"


ASK_WITHIN = timedelta(hours=1)  # an opinion later than this no longer helps the responders


def unasked(older_than: timedelta = timedelta(minutes=1)) -> list[int]:
    """Open incidents the rules were unsure of, opened a while ago, that the LLM was
    never asked about: their task was never queued (Redis away) or was lost."""
    if llm_status() != "active":
        return []
    now = timezone.now()
    return list(
        Incident.objects.filter(created_at__range=(now - ASK_WITHIN, now - older_than), llm_asked_at__isnull=True,
                                classified_by="rules", classification_confidence__lt=settings.LLM_CONFIDENCE_THRESHOLD)
        .exclude(status=Incident.Status.RESOLVED)
        .order_by("pk").values_list("pk", flat=True)[:100]
    )


def fell_back(incident_id: int, exc: llm.LLMUnavailable, what: str) -> str:
    """An LLM call that gave no usable answer: logged, and the tokens it did use (an
    answer outside the schema) charged all the same; the caller keeps its fallback."""
    log.warning("%s of incident %s: no LLM answer: %s", what, incident_id, exc)
    if exc.usage:
        charge(incident_id, exc.usage)
    return f"fallback: {exc}"


def charge(incident_id: int, usage: llm.Usage) -> None:
    """Add an LLM call's tokens and cost to the incident (what the budget sums)."""
    Incident.objects.filter(pk=incident_id).update(
        llm_input_tokens=F("llm_input_tokens") + usage.input_tokens,
        llm_output_tokens=F("llm_output_tokens") + usage.output_tokens,
        llm_cost_usd=F("llm_cost_usd") + usage.cost,
    )
