"""The severity matrix as data: one policy variant per severity for a service.

    critical: every level pages at once by phone, Slack and email; 3-minute steps
    high:     Slack and email; 10-minute steps
    medium:   Slack only; 30-minute steps; business hours only (Mon-Fri 09-17)
    low:      one email digest entry; never escalates
    info:     no policy: nothing is sent

Used by `manage.py bootstrap`-style setups, the tests and bench/escalation.py;
admins can build the same by hand in the admin.
"""

from datetime import time

from django.db import transaction

from apps.notifications.models import Notification

from .models import EscalationPolicy, EscalationRule

C = Notification.Channel
MATRIX = {
    "critical": {"channels": [C.VOICE, C.SLACK, C.EMAIL], "step": 3},
    "high": {"channels": [C.SLACK, C.EMAIL], "step": 10},
    "medium": {"channels": [C.SLACK], "step": 30, "business_hours_only": True},
    "low": {"channels": [C.EMAIL], "step": 0, "digest_only": True},
}


@transaction.atomic
def severity_matrix(service, levels: list[dict], *, time_zone: str = "UTC", repeat: int = 0) -> dict[str, EscalationPolicy]:
    """levels: one dict per level, with any of "users", "schedules", "teams"."""
    policies = {}
    for severity, spec in MATRIX.items():
        policy = EscalationPolicy.objects.create(
            name=f"{severity} pages",
            service=service,
            severities=[severity],
            repeat=0 if spec.get("digest_only") else repeat,
            digest_only=spec.get("digest_only", False),
            business_hours_only=spec.get("business_hours_only", False),
            time_zone=time_zone,
            business_start=time(9) if spec.get("business_hours_only") else None,
            business_end=time(17) if spec.get("business_hours_only") else None,
            business_weekdays=[0, 1, 2, 3, 4] if spec.get("business_hours_only") else [],
        )
        for position, targets in enumerate(levels[:1] if spec.get("digest_only") else levels):
            rule = EscalationRule.objects.create(
                policy=policy,
                position=position,
                delay_minutes=0 if position == 0 else spec["step"],
                channels=list(spec["channels"]),
            )
            rule.users.set(targets.get("users", []))
            rule.schedules.set(targets.get("schedules", []))
            rule.teams.set(targets.get("teams", []))
        policies[severity] = policy
    return policies
