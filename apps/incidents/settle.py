"""What the worker does with a new incident before anyone is paged for it.

Ingest opens incidents with `settling` set; the escalation engine holds their
first page until it is cleared here, right after commit (tasks.settle, with the
beat task settle_overdue catching any whose task was lost).  For each incident:

1. Similarity (dedup level 3): its normalised text is embedded, and if an open
   incident of the same service, at least as severe, not disagreeing with it on an
   identifying label (identity.py), is at least the service's threshold alike
   (cosine), the new one is merged into it and never pages.
2. Correlation: if a service it depends on has an open incident that began within
   the service's correlation window, and agrees with it on where (identifying
   labels other than those naming a service: cluster, region, tenant...), that
   incident becomes its parent and it does not page while the parent is open
   (inhibition; resolving the parent releases it).
3. Otherwise it is announced (Slack channel, webhooks) and escalates as usual; and
   as effects are often seen before their cause, open incidents of services that
   depend on it, opened within their window before it, become its children from
   now on (their further escalation is held back).

Settling is serialised per service (an advisory lock), so two similar incidents
settling at once cannot both stay open.  Embedding runs before any lock is taken.
"""

import logging
from datetime import timedelta
from functools import partial

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from pgvector.django import CosineDistance

from apps.audit.services import Actor
from incident_manager import redis_outage

from . import dedup, embeddings, identity, lifecycle, services
from .models import DedupReason, Incident, IncidentKey, Service, Severity

log = logging.getLogger(__name__)

ACTOR = Actor("similarity")
SEVERITY_ORDER = [Severity.CRITICAL, Severity.HIGH, Severity.MEDIUM, Severity.LOW, Severity.INFO]


BATCH = 50  # incidents embedded together: ~3 ms each instead of ~14 ms one by one
CLAIM_SECONDS = 60


def settle(incident_ids: list[int]) -> dict[int, str]:
    """Settle these incidents, and others still waiting (a storm queues one task per
    request: whichever task runs first takes a batch); return what became of each.

    Each incident is claimed in Redis while a task embeds it, so concurrent tasks
    do not embed the same ones; correctness does not rest on the claim (each is
    settled under its row lock, once), only the wasted work does."""
    waiting = Incident.objects.filter(settling=True).exclude(pk__in=incident_ids).order_by("pk")
    wanted = [*incident_ids, *waiting.values_list("pk", flat=True)[: max(0, BATCH - len(incident_ids))]]
    claimed = _claim(wanted)
    try:
        pending = list(Incident.objects.filter(pk__in=claimed, settling=True).order_by("pk"))
        if not pending:
            return {}
        try:
            vectors = embeddings.embed([embeddings.normalise(i.title, i.description) for i in pending])
        except Exception:
            # A broken model must not stop paging: settle without similarity.
            log.exception("embedding failed; settling %d incidents without similarity", len(pending))
            vectors = [None] * len(pending)
        by_service = {}
        for incident, vector in zip(pending, vectors):
            by_service.setdefault(incident.service_id, {})[incident.pk] = vector
        graph = Dependencies()
        outcomes = {}
        for service_id, batch in by_service.items():
            outcomes.update(_settle_service(service_id, batch, graph))
        return outcomes
    finally:
        _release(claimed)


@redis_outage.or_else(None)
def _release(claimed: list[int]) -> None:
    cache.delete_many([f"settle-claim:{pk}" for pk in claimed])


def _claim(wanted: list[int]) -> list[int]:
    """Those of `wanted` no other task is embedding; without Redis, all of them."""
    claimed = redis_outage.attempt("settle claims", lambda: [pk for pk in wanted if cache.add(f"settle-claim:{pk}", 1, timeout=CLAIM_SECONDS)])
    return wanted if claimed is None else claimed


def _settle_service(service_id: int, vectors: dict[int, list | None], graph: "Dependencies") -> dict[int, str]:
    """Each incident in a short transaction of its own, in the lock order of ingest:
    its keys (which a merge moves) first, then its row.  "settle" serialises the
    settling of a service's incidents, so two similar ones cannot both stay open.
    (One transaction for the whole batch held its keys' locks for a second under
    load, and new alerts of those keys waited that long: bench/ingest.py.)"""
    outcomes = {}
    for pk, vector in vectors.items():
        try:
            outcomes[pk] = dedup.retrying_deadlocks(partial(_settle_locked, service_id, pk, vector, graph))
        except Exception:
            # Fail open: an incident we cannot compare still pages.
            log.exception("settling incident %s failed; announcing it unchecked", pk)
            with transaction.atomic():
                if Incident.objects.filter(pk=pk, settling=True).update(settling=False):
                    lifecycle.settled.send(sender=Incident, incident_id=pk, service_id=service_id)
            outcomes[pk] = "announced unchecked"
    return outcomes


def _settle_locked(service_id: int, pk: int, vector, graph: "Dependencies") -> str:
    keys = _keys_of(pk)
    while True:
        with transaction.atomic():
            dedup.lock_keys(service_id, ["settle", *keys])
            if not (joined := _keys_of(pk) - keys):
                incident = Incident.objects.select_for_update(of=("self",)).select_related("service").get(pk=pk)
                return _settle_one(incident, vector, graph)
            # Keys joined between the read and the lock.  Locked now, in a second batch,
            # they could deadlock with ingest (which takes its batch in ascending order):
            # let go of all, and take them all in one batch.
            transaction.set_rollback(True)
        keys |= joined


def _keys_of(pk: int) -> set[str]:
    return set(IncidentKey.objects.filter(incident_id=pk).values_list("key", flat=True))


def _settle_one(incident: Incident, vector, graph: "Dependencies") -> str:
    if not incident.settling:
        return "already settled"
    incident.settling = False
    incident.embedding = vector
    incident.save(update_fields=["settling", "embedding", "updated_at"])
    if incident.status != Incident.Status.TRIGGERED:
        return "left as it is"  # acknowledged or resolved before we got to it
    names = identifying_labels(incident.service)
    if vector is not None and (match := _most_similar(incident, vector, names)):
        target, similarity = match
        services.merge(
            incident, into=target, actor=ACTOR, reason=DedupReason.SIMILARITY,
            detail=f"text {similarity:.2f} similar to #{target.number} (threshold {threshold(incident.service):.2f}); "
            + identity.checked(names, incident.labels),
        )
        return f"merged into #{target.number}"
    if parent := _cause(incident, graph.dependencies_of(incident.service_id), names):
        services.inhibit(incident, parent=parent, actor=ACTOR)
        return f"inhibited by #{parent.number}"
    lifecycle.settled.send(sender=Incident, incident_id=incident.pk, service_id=incident.service_id)
    adopted = _adopt_effects(incident, graph.dependents_of(incident.service_id))
    return f"announced; holds back {', '.join(f'#{n}' for n in adopted)}" if adopted else "announced"


def needed(service_id: int) -> bool:
    """Whether a new incident of this service has anything to be checked against: a
    service with similarity off and no dependency either way is announced at once."""
    limit = Service.objects.filter(pk=service_id).values_list("similarity_threshold", flat=True).first()
    if (settings.SIMILARITY_THRESHOLD if limit is None else limit) < 1:
        return True
    links = Service.depends_on.through.objects
    return links.filter(Q(from_service_id=service_id) | Q(to_service_id=service_id)).exists()


def identifying_labels(service: Service) -> tuple[str, ...]:
    return identity.labels_of(service.identifying_labels, dedup.grouping_rules(service.pk))


def threshold(service: Service) -> float:
    return service.similarity_threshold if service.similarity_threshold is not None else settings.SIMILARITY_THRESHOLD


def _most_similar(incident: Incident, vector, names) -> tuple[Incident, float] | None:
    limit = threshold(incident.service)
    if limit >= 1:  # the way to turn similarity off for a service
        return None
    as_severe = SEVERITY_ORDER[: SEVERITY_ORDER.index(incident.severity) + 1]
    candidate = (
        Incident.objects.filter(service_id=incident.service_id, settling=False, embedding__isnull=False, severity__in=as_severe)
        .exclude(status=Incident.Status.RESOLVED)
        .exclude(pk=incident.pk)
        # Not back into an incident a responder split one of its alerts out of.
        .exclude(pk__in=IncidentKey.objects.filter(kind=IncidentKey.Kind.APART, key__in=incident.keys.values("key")).values("incident_id"))
        .filter(identity.agreeing(incident.labels, names))
        .annotate(distance=CosineDistance("embedding", vector))
        .order_by("distance")
        .first()
    )
    if candidate is None or 1 - candidate.distance < limit:
        return None
    return candidate, 1 - candidate.distance


def _adopt_effects(cause: Incident, dependents: set[int]) -> list[int]:
    """Incidents of dependent services that opened just before their cause: they are
    held back from now on (their first announcement may already have gone out)."""
    if not dependents:
        return []
    effects = (
        Incident.objects.select_for_update(skip_locked=True, of=("self",))  # busy ones settle themselves
        .select_related("service")
        .filter(service_id__in=dependents, status=Incident.Status.TRIGGERED, parent__isnull=True, settling=False,
                created_at__lte=cause.created_at)
        .order_by("pk")
    )
    adopted = []
    for effect in effects:
        if identity.conflict(effect.labels, cause.labels, _where(identifying_labels(effect.service))):
            continue  # the same kind of trouble elsewhere: not this cause's effect
        if effect.created_at >= cause.created_at - timedelta(minutes=effect.service.correlation_minutes):
            services.inhibit(effect, parent=cause, actor=ACTOR, late=True)
            adopted.append(effect.number)
    return adopted


def _where(names) -> tuple[str, ...]:
    """The identifying labels that say where, not what: a service and the one it
    depends on differ in the others by nature."""
    return tuple(name for name in names if name not in identity.NAMING)


def _cause(incident: Incident, dependencies: set[int], names) -> Incident | None:
    """The earliest open incident of a service this one depends on (directly or not)
    that began within the correlation window before it, or since, in the same place
    (_where): the likely cause (a cause is often alerted on a moment after its effects)."""
    if not dependencies:
        return None
    since = incident.created_at - timedelta(minutes=incident.service.correlation_minutes)
    return (
        Incident.objects.select_related("service")
        .filter(service_id__in=dependencies, created_at__gte=since)
        .filter(identity.agreeing(incident.labels, _where(names)))
        .exclude(status=Incident.Status.RESOLVED)
        .order_by("created_at", "pk")
        .first()
    )


class Dependencies:
    """The service dependency graph (admin-edited, small), read once per settle run."""

    def __init__(self):
        self.needs, self.needed_by = {}, {}
        for source, target in Service.depends_on.through.objects.values_list("from_service_id", "to_service_id"):
            self.needs.setdefault(source, set()).add(target)
            self.needed_by.setdefault(target, set()).add(source)

    def dependencies_of(self, service_id: int) -> set[int]:
        """Every service `service_id` depends on, through any chain."""
        return self._walk(self.needs, service_id)

    def dependents_of(self, service_id: int) -> set[int]:
        """Every service that depends on `service_id`, through any chain."""
        return self._walk(self.needed_by, service_id)

    @staticmethod
    def _walk(edges: dict[int, set[int]], start: int) -> set[int]:
        seen, frontier = set(), [start]
        while frontier:
            for target in edges.get(frontier.pop(), ()):
                if target not in seen and target != start:
                    seen.add(target)
                    frontier.append(target)
        return seen


def overdue_ids(older_than_seconds: int = 30) -> list[int]:
    """Incidents settling for longer than their own task should take; without Redis,
    no task could be queued for any of them (beat runs this itself then)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds if redis_outage.available() else 0)
    return list(Incident.objects.filter(settling=True, created_at__lt=cutoff).order_by("pk").values_list("pk", flat=True)[:200])
