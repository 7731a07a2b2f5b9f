"""Start, stop and restart an incident's escalation.

Called by the receivers of the incident lifecycle (receivers.py) inside the
transaction that changed the incident, with its row already locked or just
created, so the timer changes exactly when the incident does.
"""

from datetime import datetime, timedelta

from django.utils import timezone

from apps.incidents.models import Incident

from .models import EscalationPolicy, EscalationRule, EscalationState


def policy_for(service_id: int, severity: str) -> EscalationPolicy | None:
    """The service's variant for `severity`, else its catch-all policy, else None."""
    return _choose(list(EscalationPolicy.objects.filter(service_id=service_id).order_by("pk")), severity)


def _choose(policies: list[EscalationPolicy], severity: str) -> EscalationPolicy | None:
    for policy in policies:
        if severity in policy.severities:
            return policy
    return next((p for p in policies if not p.severities), None)


def first_delay(policy: EscalationPolicy) -> timedelta | None:
    """Delay of the policy's first rule, or None when it has no rule."""
    rule = EscalationRule.objects.filter(policy=policy).order_by("position", "pk").values("delay_minutes").first()
    return None if rule is None else timedelta(minutes=rule["delay_minutes"])


def start(incident, *, now: datetime | None = None) -> EscalationState | None:
    """Start escalating a new incident, by its service's policy for its severity."""
    return start_many([incident], now=now)[0]


def start_many(incidents, *, now: datetime | None = None) -> list[EscalationState | None]:
    """start() for the incidents a request opened, in three queries whatever their
    number (ingest's hot path in an alert storm).  A second start for an incident
    inserts nothing."""
    now = now or timezone.now()
    service_ids = {incident.service_id for incident in incidents}
    policies = list(EscalationPolicy.objects.filter(service_id__in=service_ids).order_by("pk"))
    delays = {}
    for rule in EscalationRule.objects.filter(policy__in=policies).order_by("-position", "-pk").values("policy_id", "delay_minutes"):
        delays[rule["policy_id"]] = timedelta(minutes=rule["delay_minutes"])  # the first rule's, last written
    states = []
    for incident in incidents:
        policy = _choose([p for p in policies if p.service_id == incident.service_id], incident.severity)
        if policy is None or policy.pk not in delays:
            states.append(None)
            continue
        states.append(EscalationState(incident_id=incident.pk, policy=policy, next_at=now + delays[policy.pk], started_at=now))
    # No savepoint: bulk_create with ignore_conflicts is one INSERT … ON CONFLICT DO NOTHING.
    EscalationState.objects.bulk_create([s for s in states if s is not None], ignore_conflicts=True)
    return states


def stop(incident, *, now: datetime | None = None) -> None:
    """The incident was acknowledged or resolved: no further level fires.  An
    acknowledged incident whose policy has an ack timeout escalates again then."""
    now = now or timezone.now()
    state = EscalationState.objects.select_for_update(of=("self",)).select_related("policy").filter(incident_id=incident.pk).first()
    if state is None:
        return
    if incident.status == Incident.Status.ACKNOWLEDGED:
        timeout = state.policy.ack_timeout_minutes
        state.status = EscalationState.Status.ACKNOWLEDGED
        state.next_at = now + timedelta(minutes=timeout) if timeout else None
    else:
        state.status = EscalationState.Status.STOPPED
        state.next_at = None
    state.save(update_fields=["status", "next_at", "updated_at"])


def restart(incident, *, now: datetime | None = None) -> EscalationState | None:
    """Escalate again from the first level (un-acknowledge, ack timeout), in a new
    cycle so that the new notifications do not collide with the earlier ones."""
    now = now or timezone.now()
    state = EscalationState.objects.select_for_update(of=("self",)).select_related("policy").filter(incident_id=incident.pk).first()
    if state is None:
        return start(incident, now=now)
    delay = first_delay(state.policy)
    if delay is None or state.policy.digest_only:  # a digest entry is sent once, never again
        return state
    state.status = EscalationState.Status.ACTIVE
    state.level = 0
    state.cycle += 1
    state.repeats_done = 0
    state.next_at = now + delay
    state.save(update_fields=["status", "level", "cycle", "repeats_done", "next_at", "updated_at"])
    return state


def replan(incident, *, now: datetime | None = None) -> EscalationState | None:
    """The incident's severity changed: escalate by the policy that severity selects.

    Levels already paged in the current cycle are not paged again: the state keeps
    its cycle and its progress (the count of levels fired) and only swaps the policy,
    so the next level of the new policy is the first one nobody has heard from, due
    after that level's own delay counted from now.  An upgrade of a level-0 incident
    (nothing paged yet, e.g. deferred to business hours, or only a digest entry)
    therefore pages at once on the new policy's channels; a downgrade never repeats
    a page.  A new policy with fewer levels than were fired is exhausted; a digest
    policy sends its one entry only if nothing was paged yet; no policy for the new
    severity stops the timer.
    An acknowledged incident only swaps the policy, for when it escalates again
    (ack timeout, un-acknowledge).  An incident without a state starts one (the
    caller decides whether it should page at all, e.g. not under a maintenance window).
    """
    now = now or timezone.now()
    S = EscalationState.Status
    state = EscalationState.objects.select_for_update().select_related("policy").filter(incident_id=incident.pk).first()
    if state is None:
        return start(incident, now=now)
    policy = policy_for(incident.service_id, incident.severity)
    if policy is not None and policy.pk == state.policy_id:
        return state
    if state.policy.digest_only:
        fired = 0  # a digest entry paged nobody
    else:
        fired = state.level + 1 if state.status == S.EXHAUSTED else state.level
    rules = list(EscalationRule.objects.filter(policy=policy).order_by("position", "pk")) if policy else []
    if not rules:
        state.status, state.next_at = S.STOPPED, None
    elif state.status == S.ACKNOWLEDGED:
        state.policy = policy  # someone is on it: the new policy applies when it escalates again
    else:
        state.policy = policy
        if (policy.digest_only and fired > 0) or fired >= len(rules):
            state.status, state.next_at = S.EXHAUSTED, None
            state.level = min(fired, len(rules)) - 1 if fired else 0
        else:
            state.status = S.ACTIVE
            state.level = fired
            state.next_at = now + timedelta(minutes=rules[fired].delay_minutes)
    state.save(update_fields=["policy", "status", "level", "next_at", "updated_at"])
    return state


def escalate_now(incident, *, now: datetime | None = None) -> EscalationState | None:
    """Fire the incident's next level at the next tick instead of after its delay."""
    now = now or timezone.now()
    state = EscalationState.objects.select_for_update().filter(incident_id=incident.pk).first()
    if state is None or state.status != EscalationState.Status.ACTIVE:
        return None
    state.next_at = now
    state.save(update_fields=["next_at", "updated_at"])
    return state


def snooze(incident, *, until: datetime) -> EscalationState | None:
    """Quiet until `until`, then escalate again from the start: the engine treats it as
    an ack timeout (incidents.services.unacknowledge restarts this state)."""
    state = EscalationState.objects.select_for_update().filter(incident_id=incident.pk).first()
    if state is None:
        return None
    state.status = EscalationState.Status.ACKNOWLEDGED
    state.next_at = until
    state.save(update_fields=["status", "next_at", "updated_at"])
    return state
