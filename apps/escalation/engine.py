"""The escalation engine: `tick()` fires every due escalation level.

Celery beat runs it every 2 seconds (apps/escalation/tasks.py).  Each round takes
up to `batch` due EscalationStates with SELECT … FOR UPDATE SKIP LOCKED, so any
number of ticks can run at once without two of them taking the same state, and
in ONE transaction writes for each state its Notification rows (the outbox, through
notifications.outbox.write; delivery is that app's job), an audit entry, and the
state's next level.
A tick that dies mid-way commits nothing of its round; the next tick, in any
worker, finds the same states still due.  Every Notification carries an
idempotency key (incident, cycle, level, user, channel), so even a level fired
twice could not page twice.

One broken state (say, a rule pointing at something that makes the insert fail)
must not hold up the others: a round that fails is redone state by state, each in
a savepoint, and the failing states are left due (retried on the next tick) and
logged.
"""

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.audit.services import Actor, entry
from apps.incidents import services as incident_services
from apps.incidents.models import Incident
from apps.notifications import outbox
from apps.notifications.addresses import notification_plan
from apps.notifications.models import Notification
from apps.schedules import oncall
from incident_manager.bulk import insert

from . import bulk, services
from .models import EscalationPolicy, EscalationState
from .targets import Resolver

User = get_user_model()

logger = logging.getLogger(__name__)

ACTOR = Actor("escalation")
DIGEST_CHANNEL = Notification.Channel.EMAIL


def notification_key(incident_id, cycle, level, user_id, channel) -> str:
    return f"esc:{incident_id}:{cycle}:{level}:{user_id}:{channel}"


def digest_key(incident_id, user_id) -> str:
    return f"esc:{incident_id}:digest:{user_id}:{DIGEST_CHANNEL}"


@dataclass
class Step:
    """What one state does this round: rows to insert and its new position."""

    state: EscalationState
    notifications: list[Notification] = field(default_factory=list)
    audit: list[AuditEntry] = field(default_factory=list)


def tick(now: datetime | None = None, batch: int = 500) -> int:
    """Process every escalation due at `now` (default: the clock when the tick
    starts), in rounds of `batch`.  Returns how many states were processed.

    The cut-off is fixed for the whole tick, so a tick ends even under a steady
    stream of newly due levels (those are the next tick's, 2 s later)."""
    resolver = Resolver()
    processed = 0
    failed: set[int] = set()  # failed or busy this tick: left for the next one
    at = now or timezone.now()
    while True:
        with transaction.atomic():
            states = list(
                EscalationState.objects.select_for_update(skip_locked=True, of=("self",))
                .select_related("policy", "incident")
                .filter(status__in=[EscalationState.Status.ACTIVE, EscalationState.Status.ACKNOWLEDGED], next_at__lte=at)
                # No page before the worker has checked a new incident against the open
                # ones (apps/incidents/settle.py); it stays due until then.
                .filter(incident__settling=False)
                .exclude(pk__in=failed)
                .order_by("next_at", "pk")[:batch]
            )
            if not states:
                return processed
            states = _lock_incidents(states, skipped=failed)
            resolver.load_rules({s.policy_id for s in states})
            try:
                with transaction.atomic():
                    _apply([_plan(state, resolver, at) for state in states])
            except Exception:
                logger.warning("escalation round failed; retrying its %d states one by one", len(states), exc_info=True)
                for state in states:
                    state.refresh_from_db()  # _plan may have changed the object
                    try:
                        with transaction.atomic():
                            _apply([_plan(state, resolver, at)])
                    except Exception:
                        logger.exception("escalation of incident %s failed; retried on the next tick", state.incident_id)
                        failed.add(state.pk)
            processed += len(states)


def _lock_incidents(states: list[EscalationState], *, skipped: set[int]) -> list[EscalationState]:
    """Keep the states whose incident nobody is changing right now, holding it with
    FOR KEY SHARE (what the outbox's foreign key needs anyway).

    The lifecycle verbs lock the incident (FOR UPDATE) and then its state; we hold
    the state.  Waiting for the incident here would deadlock with them, so an
    incident being acknowledged or resolved this instant is left to the next tick
    (its verb will have stopped the escalation by then).  Alert appends (ingest's
    UPDATE) do not conflict with KEY SHARE: storms do not hold escalation up.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id, status FROM incidents_incident WHERE id = ANY(%s) FOR KEY SHARE SKIP LOCKED",
            [[s.incident_id for s in states]],
        )
        status = dict(cursor.fetchall())
    kept = []
    for state in states:
        if state.incident_id in status:
            state.incident.status = status[state.incident_id]
            kept.append(state)
        else:
            skipped.add(state.pk)
    return kept


def _apply(steps: list[Step]) -> None:
    outbox.write([n for step in steps for n in step.notifications])
    insert(AuditEntry, [e for step in steps for e in step.audit])
    bulk.update_states([step.state for step in steps if step.state is not None], timezone.now())


def _plan(state: EscalationState, resolver: Resolver, now: datetime) -> Step:
    """Decide what `state` does at `now`; changes the state object in memory."""
    incident = state.incident
    policy = state.policy
    step = Step(state)
    S = EscalationState.Status
    if incident.status == Incident.Status.RESOLVED:
        state.status, state.next_at = S.STOPPED, None
        return step
    if state.status == S.ACKNOWLEDGED:
        return _ack_timeout(state, now)
    if incident.status == Incident.Status.ACKNOWLEDGED:  # acknowledged without stop(): be safe
        state.status, state.next_at = S.ACKNOWLEDGED, None
        return step

    rules = resolver.rules(policy.pk)
    if state.level >= len(rules):
        state.status, state.next_at = S.EXHAUSTED, None
        return step

    if policy.business_hours_only and not _in_business_hours(policy, now):
        resume = _next_business_start(policy, now)
        state.next_at = resume or now + timedelta(days=1)
        step.audit.append(
            entry(
                "escalation.deferred",
                actor=ACTOR,
                incident=incident,
                data={"policy": policy.pk, "policy_name": policy.name, "level": state.level, "cycle": state.cycle,
                 "until": state.next_at.isoformat(), "why": "outside the policy's business hours"},
            )
        )
        return step

    rule = rules[0] if policy.digest_only else rules[state.level]
    targets = resolver.resolve(rule, now)
    names = resolver.usernames(targets)
    channels = [DIGEST_CHANNEL] if policy.digest_only else list(rule.channels)
    base_reason = {
        "policy": policy.pk,
        "policy_name": policy.name,
        "rule": rule.id,
        "level": state.level,
        "cycle": state.cycle,
        "due_at": state.next_at.isoformat(),
    }
    if policy.digest_only:
        base_reason["digest"] = True
    for user_id, why in targets.items():
        for channel, delay in _channels_for(user_id, channels, incident.severity):
            key = (
                digest_key(incident.pk, user_id)
                if policy.digest_only
                else notification_key(incident.pk, state.cycle, state.level, user_id, channel)
            )
            step.notifications.append(
                Notification(
                    incident_id=incident.pk,
                    recipient_id=user_id,
                    channel=channel,
                    idempotency_key=key,
                    status=Notification.Status.PENDING,
                    # A delayed step of a person's rules ("call after 2 minutes") waits in the
                    # outbox; delivery drops it if the incident is acknowledged by then.  Digest
                    # entries wait for the daily digest, which mails a person's due ones at once.
                    next_attempt_at=next_digest_at(now) if policy.digest_only else now + timedelta(minutes=delay),
                    reason={**base_reason, "why": why, **({"personal_rule_delay": delay} if delay else {})},
                )
            )
    step.audit.append(
        entry(
            "escalation.notified",
            actor=ACTOR,
            incident=incident,
            data={
                **base_reason,
                "channels": channels,
                "targets": [{"user": u, "username": names.get(u, str(u)), "why": why} for u, why in targets.items()],
                **({} if targets else {"why": "nobody to notify: no target resolved to a person"}),
            },
        )
    )
    _advance(state, rules, now)
    return step


def next_digest_at(now: datetime) -> datetime:
    """The next daily digest: NOTIFY_DIGEST_HOUR_UTC o'clock, today or tomorrow."""
    today = now.astimezone(UTC).replace(hour=settings.NOTIFY_DIGEST_HOUR_UTC, minute=0, second=0, microsecond=0)
    return today if today > now else today + timedelta(days=1)


def _channels_for(user_id: int, channels: list[str], severity: str) -> list[tuple[str, int]]:
    """The level's channels, each at once; a level without channels uses the person's
    own notification rules (apps/notifications/addresses.py)."""
    if channels:
        return [(channel, 0) for channel in channels]
    user = User.objects.get(pk=user_id)
    return [(channel, delay) for channel, _address, delay in notification_plan(user, severity)]


def _advance(state: EscalationState, rules, now: datetime) -> None:
    S = EscalationState.Status
    policy = state.policy
    if policy.digest_only:
        state.status, state.next_at = S.EXHAUSTED, None
    elif state.level + 1 < len(rules):
        state.level += 1
        state.next_at = now + timedelta(minutes=rules[state.level].delay_minutes)
    elif state.repeats_done < policy.repeat:
        gap = policy.repeat_delay_minutes if policy.repeat_delay_minutes is not None else rules[-1].delay_minutes
        state.level = 0
        state.cycle += 1
        state.repeats_done += 1
        state.next_at = now + timedelta(minutes=gap)
    else:
        state.status, state.next_at = S.EXHAUSTED, None


def _ack_timeout(state: EscalationState, now: datetime) -> Step:
    """The ack timeout ran out: the incident goes back to triggered and escalates
    again (incidents.services.unacknowledge restarts this state)."""
    incident = state.incident
    # Lock order elsewhere is incident, then state; we hold the state, so never
    # wait for the incident: if someone is changing it right now, try next tick.
    got = Incident.objects.select_for_update(skip_locked=True).filter(pk=incident.pk).values_list("status", flat=True)
    status = next(iter(got), None)
    if status is None:
        return Step(None)
    if status == Incident.Status.ACKNOWLEDGED:
        incident_services.unacknowledge(incident.pk, actor=ACTOR, reason="acknowledgement timed out")
    elif status == Incident.Status.TRIGGERED:
        services.restart(incident, now=now)
    else:
        state.status, state.next_at = EscalationState.Status.STOPPED, None
        return Step(state)
    return Step(None)  # unacknowledge() / restart() saved the state themselves


def _in_business_hours(policy: EscalationPolicy, at: datetime) -> bool:
    return oncall.in_window(at, oncall.ZoneInfo(policy.time_zone), policy.business_start, policy.business_end, policy.business_weekdays)


def _next_business_start(policy: EscalationPolicy, at: datetime) -> datetime | None:
    return oncall.next_window_start(
        at, oncall.ZoneInfo(policy.time_zone), policy.business_start, policy.business_end, policy.business_weekdays
    )
