"""Meaning-based look-ups for an incident: matching runbooks and similar past incidents.

Embeddings come from apps.incidents.embeddings (unit vectors, cosine distance in
pgvector, HNSW indexes).  Computing one loads the model, so only workers call
ensure_embedding() and embed_runbook(); the web processes only query.
"""

import re
from dataclasses import dataclass, field
from datetime import timedelta

from django.db.models import Q
from pgvector.django import CosineDistance

from apps.audit.models import AuditEntry
from apps.incidents import embeddings
from apps.incidents.models import Incident

from .models import Postmortem, Runbook

# all-MiniLM-L6-v2 puts related alerts and runbook titles at 0.5-0.9 and unrelated
# LLM-ops texts at 0.05-0.3 (measured on the tests' examples): below these, noise.
RUNBOOK_MIN_SIMILARITY = 0.4
INCIDENT_MIN_SIMILARITY = 0.3
RUNBOOKS_SHOWN = 3
INCIDENTS_SHOWN = 5

_WORD = re.compile(r"[a-z][a-z0-9_-]{2,}")
_STOPWORDS = frozenset(
    "the and for with from this that are was were has have not but all any its into over under than then "
    "when what which who why how out off per via one two new old our your their there here alert alerts "
    "firing incident service".split()
)


def ensure_embedding(incident: Incident) -> list[float]:
    """The incident's embedding, computed and stored first if it has none yet."""
    if incident.embedding is not None:
        return incident.embedding
    (vector,) = embeddings.embed([embeddings.normalise(incident.title, incident.description)])
    # Another worker (semantic dedup) may have stored one meanwhile: keep the first.
    Incident.objects.filter(pk=incident.pk, embedding__isnull=True).update(embedding=vector)
    incident.embedding = vector
    return vector


def runbook_text(runbook: Runbook) -> str:
    """What a runbook is for (title and tags): its steps would dilute that meaning
    (a GPU OOM alert scores 0.56 against a runbook's title and tags, 0.37 with its body)."""
    text = f"{runbook.title}. Tags: {', '.join(runbook.tags)}" if runbook.tags else runbook.title
    return embeddings.normalise(text)


def embed_runbook(runbook_id: int) -> bool:
    runbook = Runbook.objects.filter(pk=runbook_id).first()
    if runbook is None:
        return False
    (vector,) = embeddings.embed([runbook_text(runbook)])
    # Only if unchanged since read: a newer save has queued its own embedding.
    return bool(Runbook.objects.filter(pk=runbook.pk, updated_at=runbook.updated_at).update(embedding=vector))


@dataclass
class RunbookMatch:
    runbook: Runbook
    similarity: float
    shared_tags: list[str] = field(default_factory=list)
    shared_words: list[str] = field(default_factory=list)


@dataclass
class PastIncident:
    incident: Incident
    similarity: float
    time_to_resolve: timedelta | None
    # How it ended, whichever of these exist:
    resolve_reason: str = ""
    last_note: str = ""
    postmortem_summary: str = ""


def _embedding_of(incident: Incident):
    # Pages load incidents without their embedding (selectors defer it).
    return Incident.objects.filter(pk=incident.pk).values_list("embedding", flat=True).first()


def words(*texts: str) -> set[str]:
    return {w for text in texts for w in _WORD.findall(text.lower()) if w not in _STOPWORDS}


def matching_runbooks(incident: Incident, limit: int = RUNBOOKS_SHOWN) -> list[RunbookMatch] | None:
    """Runbooks of the incident's service or of none, closest first; None while the
    incident has no embedding yet."""
    vector = _embedding_of(incident)
    if vector is None:
        return None
    runbooks = (
        Runbook.objects.filter(embedding__isnull=False)
        .filter(Q(service_id=incident.service_id) | Q(service__isnull=True))
        .annotate(distance=CosineDistance("embedding", vector))
        .filter(distance__lte=1 - RUNBOOK_MIN_SIMILARITY)
        .defer("embedding")
        .order_by("distance")[:limit]
    )
    incident_words = words(incident.title, incident.description, incident.category, *map(str, incident.labels.values()))
    return [
        RunbookMatch(
            runbook=runbook,
            similarity=1 - runbook.distance,
            shared_tags=[tag for tag in runbook.tags if words(tag) & incident_words],
            shared_words=sorted(words(runbook.title, runbook.body) & incident_words)[:8],
        )
        for runbook in runbooks
    ]


def similar_incidents(incident: Incident, limit: int = INCIDENTS_SHOWN) -> list[PastIncident] | None:
    """Resolved incidents of any service, closest first, with how each was resolved."""
    vector = _embedding_of(incident)
    if vector is None:
        return None
    past = list(
        Incident.objects.filter(status=Incident.Status.RESOLVED, embedding__isnull=False)
        .exclude(pk=incident.pk)
        .annotate(distance=CosineDistance("embedding", vector))
        .filter(distance__lte=1 - INCIDENT_MIN_SIMILARITY)
        .select_related("service")
        .defer("embedding")
        .order_by("distance")[:limit]
    )
    ids = [p.pk for p in past]
    reasons, notes = {}, {}
    entries = AuditEntry.objects.filter(incident_id__in=ids, verb__in=["incident.resolved", "incident.note_added"])
    for entry in entries.order_by("at", "pk"):  # the latest of each wins
        if entry.verb == "incident.resolved" and entry.data.get("reason"):
            reasons[entry.incident_id] = entry.data["reason"]
        elif entry.verb == "incident.note_added":
            notes[entry.incident_id] = entry.data.get("text", "")
    summaries = dict(Postmortem.objects.filter(incident_id__in=ids).exclude(summary="").values_list("incident_id", "summary"))
    return [
        PastIncident(
            incident=p,
            similarity=1 - p.distance,
            time_to_resolve=p.resolved_at - p.created_at if p.resolved_at else None,
            resolve_reason=reasons.get(p.pk, ""),
            last_note=notes.get(p.pk, ""),
            postmortem_summary=summaries.get(p.pk, ""),
        )
        for p in past
    ]
