from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import SYSTEM
from apps.incidents.models import Incident

from . import postmortems, similar, summaries
from .models import Runbook

EMBED_BATCH = 100
# Similar incidents are looked for among resolved ones up to this old.
EMBED_RESOLVED_WITHIN = timedelta(days=90)
DRAFT_RESOLVED_WITHIN = timedelta(days=7)


@shared_task
def summarise(incident_id: int) -> str:
    return summaries.summarise(incident_id)


@shared_task
def embed_runbook(runbook_id: int) -> bool:
    return similar.embed_runbook(runbook_id)


@shared_task
def embed_incidents(incident_ids: list[int]) -> int:
    incidents = Incident.objects.filter(pk__in=incident_ids, embedding__isnull=True).only("pk", "title", "description", "embedding")
    for incident in incidents:
        similar.ensure_embedding(incident)
    return len(incidents)


@shared_task
def draft_postmortem(incident_id: int) -> str:
    """A resolved critical/high incident's draft: the template's, then the LLM's if it can."""
    incident = Incident.objects.select_related("service").filter(pk=incident_id).first()
    if incident is None or not postmortems.eligible(incident):
        return "not eligible"
    postmortems.draft(incident, actor=SYSTEM)
    return postmortems.improve_with_llm(incident_id)


@shared_task
def improve_postmortem(incident_id: int) -> str:
    return postmortems.improve_with_llm(incident_id)


@shared_task
def sweep() -> dict[str, int]:
    """Beat, every 30 s: queue what responders' pages are missing.  Timers live in the
    database: whatever a lost message or a busy worker left undone is found again here.

    - summaries of open incidents with alerts the summary has not seen (throttled);
    - embeddings of incidents (open, or resolved lately) and runbooks that have none;
    - postmortem drafts of critical/high incidents resolved lately.
    """
    due = summaries.due() if settings.ANTHROPIC_API_KEY else []
    for incident_id in due:
        summarise.delay(incident_id)
    recent = timezone.now() - EMBED_RESOLVED_WITHIN
    missing = list(
        Incident.objects.filter(embedding__isnull=True)
        .filter(~Q(status=Incident.Status.RESOLVED) | Q(resolved_at__gte=recent))
        .order_by("-created_at")
        .values_list("pk", flat=True)[:EMBED_BATCH]
    )
    if missing:
        embed_incidents.delay(missing)
    runbooks = list(Runbook.objects.filter(embedding__isnull=True).values_list("pk", flat=True)[:EMBED_BATCH])
    for runbook_id in runbooks:
        embed_runbook.delay(runbook_id)
    drafts = list(
        Incident.objects.filter(
            status=Incident.Status.RESOLVED,
            severity__in=postmortems.ELIGIBLE_SEVERITIES,
            resolved_at__gte=timezone.now() - DRAFT_RESOLVED_WITHIN,
            postmortem__isnull=True,
        ).values_list("pk", flat=True)[:EMBED_BATCH]
    )
    for incident_id in drafts:
        draft_postmortem.delay(incident_id)
    return {"summaries": len(due), "incident_embeddings": len(missing), "runbooks": len(runbooks), "postmortems": len(drafts)}

