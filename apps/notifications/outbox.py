"""The outbox: Notification rows in, messages out.

Writers (announce() here, for the incident lifecycle's receivers; write() for
escalation's tick()) insert rows in their own transaction and, on commit, enqueue
the task `deliver_notifications`; the beat task `deliver_due` picks up every row
whose next attempt is due, so a lost task only delays a message by a second.
The tasks are defined here, beside what they run (tasks.py registers them).

deliver() records each attempt before calling the provider, then holds the row's
lock (SELECT … FOR UPDATE) for the send: a second deliverer of the same row skips
it instead of sending twice, and a worker that dies mid-send releases the lock
with its connection, leaving the row pending with its attempt on record (at least
once; the next attempt checks what it can before sending again).  Retries are
timers in the row (next_attempt_at), not Celery countdowns.
"""

import logging
from datetime import timedelta

from celery import shared_task
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.audit.services import SYSTEM, record
from apps.incidents import throttle

from . import breaker, channels
from .channels import PermanentError, RetryableError, slack
from incident_manager import redis_outage
from incident_manager.bulk import insert

from .models import Notification, SlackChannelLink, SlackMessage, WebhookEndpoint

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 3600  # seconds; a Retry-After beyond this is capped
DUE_BATCH = 500


# ----- writing rows ------------------------------------------------------------------------


def announce(incident_id: int, service_id: int, team_id: int | None = None) -> list[int]:
    """Write the rows that announce a new incident: one per Slack channel and per
    webhook of its service (and team).  Call inside the incident's transaction.

    Targets it was already announced to are skipped: an incident held back by its
    cause after being announced is announced again when released, to new targets only."""
    slack = SlackChannelLink.objects.filter(service_id=service_id, is_active=True).values_list("pk", flat=True)
    webhooks = WebhookEndpoint.objects.filter(
        Q(service_id=service_id) | Q(service__isnull=True, team__services=service_id), is_active=True
    ).values_list("pk", flat=True).distinct()
    targets = [(Notification.Channel.SLACK, f"slack-channel:{pk}") for pk in slack]
    targets += [(Notification.Channel.WEBHOOK, f"webhook:{pk}") for pk in webhooks]
    if not targets:
        return []
    done = set(Notification.objects.filter(incident_id=incident_id, reason__has_key="announce").values_list("target", flat=True))
    rows = [
        Notification(
            incident_id=incident_id,
            channel=channel,
            target=target,
            idempotency_key=f"incident:{incident_id}:announce:{target}",
            reason={"announce": "incident opened"},
            next_attempt_at=timezone.now(),
        )
        for channel, target in targets
        if target not in done
    ]
    ids = [n.pk for n in Notification.objects.bulk_create(rows)]
    enqueue(ids)
    return ids


def write(rows: list[Notification]) -> None:
    """Write rows decided elsewhere (escalation's tick), in the caller's transaction,
    in one statement however many, and deliver those due now once it commits.  A row
    whose idempotency key exists already (the same level fired twice) inserts nothing."""
    insert(Notification, rows, ignore_conflicts=True)
    now = timezone.now()
    if due := [n.idempotency_key for n in rows if n.next_attempt_at is None or n.next_attempt_at <= now]:
        enqueue(list(Notification.objects.filter(idempotency_key__in=due, status=Notification.Status.PENDING,
                                                 attempts=0).values_list("pk", flat=True)))


def enqueue(ids: list[int]) -> None:
    """Deliver these rows as soon as their transaction commits."""
    if not ids:
        return
    # The rows are committed; if the broker is away, deliver_due sends them.
    transaction.on_commit(lambda: redis_outage.attempt("queue deliveries", deliver_notifications.delay, ids), robust=True)


FAN_OUT = 20  # rows per task when the beat finds many due at once


@shared_task
def deliver_notifications(ids: list[int]) -> dict:
    """Attempt these rows now.  Safe to run twice: deliver() skips rows that are
    delivered, not yet due, or locked by another worker."""
    outcomes = {}
    for pk in ids:
        outcome = deliver(pk)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    return outcomes


@shared_task
def deliver_due() -> int:
    """Beat, every second: rows whose next attempt is due (retries, fallbacks, rows
    whose task was lost), spread over the workers; without the broker (beat runs this
    itself then: incident_manager/beat.py), delivered here."""
    ids = due_ids()
    if redis_outage.attempt("queue due deliveries", _fan_out, ids) is None:
        deliver_notifications(ids)
    return len(ids)


def _fan_out(ids: list[int]) -> bool:
    ids = claim_for_enqueue(ids)
    for start in range(0, len(ids), FAN_OUT):
        deliver_notifications.delay(ids[start : start + FAN_OUT])
    return True


# ----- delivering rows ---------------------------------------------------------------------


FRESH_GRACE_SECONDS = 5  # a new row's own task gets this long before the beat sends it too
ENQUEUED_SECONDS = 10  # the beat does not enqueue a row again within this long


def due_ids(limit: int = DUE_BATCH) -> list[int]:
    """Pending rows whose attempt is due: retries and rows written a while ago (a
    level's later page) when due, and rows just written once their own task (enqueued
    on commit) had FRESH_GRACE_SECONDS to send them; without Redis no such task was queued."""
    now = timezone.now()
    grace = FRESH_GRACE_SECONDS if redis_outage.available() else 0
    return list(
        Notification.objects.filter(status=Notification.Status.PENDING, next_attempt_at__lte=now)
        .filter(Q(attempts__gt=0) | Q(created_at__lte=now - timedelta(seconds=grace)))
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:limit]
    )


def claim_for_enqueue(ids: list[int]) -> list[int]:
    """The ids not enqueued by the beat in the last ENQUEUED_SECONDS (so a slow worker
    does not get the same row queued every second)."""
    return [pk for pk in ids if cache.add(f"notify-enqueued:{pk}", 1, timeout=ENQUEUED_SECONDS)]


SENDING_LEASE_SECONDS = 5  # an attempt recorded this recently, on a row nobody holds, is about to be sent


def _pending(notification_id: int, *, skip_locked: bool) -> Notification | None:
    rows = (
        Notification.objects.select_for_update(skip_locked=skip_locked, of=("self",))
        # Who acknowledged or resolved it is loaded only when a message shows it: most
        # rows announce or page a triggered incident, where both are empty.
        .select_related("incident__service", "recipient")
        .defer("incident__embedding")
        .filter(pk=notification_id, status=Notification.Status.PENDING)
        # One row by its key: no ORDER BY.  Compiling the model's default ordering over
        # the join was the largest CPU cost of a delivery (profiled).
        .order_by()
    )
    return next(iter(rows), None)


def deliver(notification_id: int) -> str:
    """Make one attempt at a due row.  Returns what happened: "delivered", "retry",
    "failed", "fallback", "deferred", "suppressed", or "skipped" (not pending, not
    due, or being delivered by someone else right now).

    The attempt is recorded and committed (sending_since) before the provider is
    called, and the send then runs under the row's lock.  A row whose recorded
    attempt never ended had its worker stop mid-send, maybe after the provider took
    the message: the next attempt asks the provider first where the channel can
    (Slack: the channel's recent history), and otherwise sends again, with the row
    and the incident's timeline saying it may be a duplicate (webhooks carry the
    same webhook-id, so receivers can drop it)."""
    with transaction.atomic():
        n = _pending(notification_id, skip_locked=True)
        now = timezone.now()
        if n is None or (n.next_attempt_at and n.next_attempt_at > now):
            return "skipped"
        if n.sending_since and n.sending_since > now - timedelta(seconds=SENDING_LEASE_SECONDS):
            return "skipped"  # recorded a moment ago by a worker that is about to send it
        if n.recipient_id and n.incident.status != n.incident.Status.TRIGGERED:
            # Paging a person about an incident someone already took is noise.
            return _finish(n, Notification.Status.SUPPRESSED, f"incident is {n.incident.status}", "suppressed")
        module = channels.get(n.channel)
        try:
            circuit = module.breaker_name(n)
        except PermanentError as exc:
            return _finish(n, Notification.Status.FAILED, str(exc), "failed")
        if not breaker.allow(circuit):
            return _circuit_open(n, circuit, now)
        in_doubt = n.sending_since
        n.attempts += 1
        n.sending_since = claimed = now
        n.save(update_fields=["attempts", "sending_since"])
    with transaction.atomic():
        n = _pending(notification_id, skip_locked=False)
        if n is None or n.sending_since != claimed:
            return "skipped"
        n.sending_since = None  # saved with the attempt's outcome
        if in_doubt:
            if external_id := _found_sent(module, n, in_doubt):
                _audit("notification.recovered", n, found=external_id)
                return _delivered(n, circuit, external_id)
            n.possible_duplicate = True
            _audit("notification.possible_duplicate", n, since=in_doubt.isoformat())
        try:
            with transaction.atomic():  # a failed send leaves no half-written rows behind
                external_id = module.send(n)
        except RetryableError as exc:
            breaker.failure(circuit)
            return _retry_or_give_up(n, exc, now)
        except PermanentError as exc:
            breaker.success(circuit)  # the service answered: it is up
            return _finish(n, Notification.Status.FAILED, str(exc), "failed")
        except Exception as exc:  # a bug or an unforeseen error: retried, not lost
            log.exception("notification %s: unexpected error", n.pk)
            breaker.failure(circuit)
            return _retry_or_give_up(n, RetryableError(f"{type(exc).__name__}: {exc}"), now)
        return _delivered(n, circuit, external_id)


def _found_sent(module, n: Notification, since) -> str | None:
    """The provider's id of the message an interrupted attempt sent, if the channel can
    tell (its module has find_sent) and did send it; a failed lookup counts as not sent."""
    if not hasattr(module, "find_sent"):
        return None
    try:
        return module.find_sent(n, since)
    except (RetryableError, PermanentError) as exc:
        log.warning("notification %s: could not check whether it was sent: %s", n.pk, exc)
        return None


def _delivered(n: Notification, circuit: str, external_id: str) -> str:
    breaker.success(circuit)
    n.status = Notification.Status.DELIVERED
    n.delivered_at = timezone.now()
    n.external_id = (external_id or "")[:255]
    n.last_error = ""
    n.next_attempt_at = None
    n.save(update_fields=["status", "delivered_at", "external_id", "last_error", "next_attempt_at", "attempts",
                          "sending_since", "possible_duplicate"])
    _audit("notification.delivered", n)
    return "delivered"


def _retry_or_give_up(n: Notification, exc: RetryableError, now) -> str:
    delays = settings.NOTIFY_RETRY_DELAYS
    if n.attempts > len(delays):
        return _finish(n, Notification.Status.FAILED, f"gave up after {n.attempts} attempts: {exc}", "failed")
    delay = delays[n.attempts - 1] if exc.retry_after is None else min(exc.retry_after, MAX_RETRY_AFTER)
    n.next_attempt_at = now + timedelta(seconds=delay)
    n.last_error = str(exc)[:2000]
    n.save(update_fields=["attempts", "next_attempt_at", "last_error", "sending_since", "possible_duplicate"])
    return "retry"


def _finish(n: Notification, status: str, error: str, outcome: str) -> str:
    n.status = status
    n.sending_since = None
    n.last_error = error[:2000]
    n.next_attempt_at = None
    n.save(update_fields=["status", "attempts", "last_error", "next_attempt_at", "sending_since", "possible_duplicate"])
    _audit(f"notification.{outcome}", n)
    return outcome


def _circuit_open(n: Notification, circuit: str, now) -> str:
    """The channel is out: hand the message to the next channel of the fallback
    chain that can reach its audience, or wait for the circuit's trial."""
    chain = settings.NOTIFY_FALLBACK_CHAIN
    if n.channel in chain:
        for next_channel in chain[chain.index(n.channel) + 1 :]:
            fallback = _fallback_row(n, next_channel)
            if fallback is None:
                continue
            n.status = Notification.Status.FAILED
            n.last_error = f"{circuit} circuit open: fell back to {next_channel} (notification {fallback.pk})"
            n.next_attempt_at = None
            n.save(update_fields=["status", "last_error", "next_attempt_at"])
            _audit("notification.fallback", n, fallback_to=next_channel, fallback=fallback.pk)
            enqueue([fallback.pk])
            return "fallback"
    until = breaker.open_until(circuit)
    wait = max(1.0, (until or 0) - now.timestamp())
    n.next_attempt_at = now + timedelta(seconds=min(wait, settings.NOTIFY_BREAKER_OPEN_SECONDS))
    n.last_error = f"{circuit} circuit open; waiting for it to close"
    n.save(update_fields=["next_attempt_at", "last_error"])
    return "deferred"


def _fallback_row(n: Notification, channel: str) -> Notification | None:
    target = channels.get(channel).fallback_target(n)
    if target is None:
        return None
    fallback, _ = Notification.objects.get_or_create(
        idempotency_key=f"{n.idempotency_key}:fallback:{channel}",
        defaults={
            "incident_id": n.incident_id,
            "recipient": n.recipient,
            "channel": channel,
            "target": target,
            "reason": {**n.reason, "fallback_of": n.pk, "from": n.channel},
            "fallback_of": n,
            "next_attempt_at": timezone.now(),
        },
    )
    return fallback


def _audit(verb: str, n: Notification, **extra) -> None:
    data = {
        "notification": n.pk,
        "channel": n.channel,
        "to": n.recipient.get_username() if n.recipient_id else n.target,
        "attempts": n.attempts,
        **extra,
    }
    if n.external_id:
        data["external_id"] = n.external_id
    if n.last_error:
        data["error"] = n.last_error
    record(verb, actor=SYSTEM, incident=n.incident, data=data)


# ----- keeping Slack messages current --------------------------------------------------------

FOLLOWUP_THROTTLE_SECONDS = 30


def incident_changed(incident_id: int) -> None:
    """After a change commits (any caller: portal, API, Slack, tasks): update its Slack
    messages.  Queued, not inline: Slack's latency stays out of the request."""
    if SlackMessage.objects.filter(incident_id=incident_id).exclude(ts="").exists():
        # Lost with Redis away: the next change brings the message up to date.
        redis_outage.attempt("queue Slack update", slack.update_slack_messages.delay, incident_id)


def alerts_appended(incident_ids: list[int]) -> None:
    """After more alerts joined open incidents: a thread reply, at most one per
    incident per FOLLOWUP_THROTTLE_SECONDS (the reply counts all that arrived since).
    One Redis round trip per ingest request, whatever the number of incidents."""
    keys = {f"slack-followup:{pk}": pk for pk in incident_ids}
    due = [keys[key] for key in throttle.first_in_window(list(keys), FOLLOWUP_THROTTLE_SECONDS)]
    if not due:
        return
    threads = SlackMessage.objects.filter(incident_id__in=due).exclude(ts="").values_list("incident_id", flat=True)
    for incident_id in sorted(set(threads)):
        redis_outage.attempt("queue Slack follow-up", slack.post_slack_followup.apply_async, (incident_id,),
                             countdown=FOLLOWUP_THROTTLE_SECONDS)
