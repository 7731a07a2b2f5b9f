"""Who a notification reaches: per-user contact methods, with the account's e-mail
as the default e-mail address; the team for channel messages that fell back."""

from django.contrib.auth import get_user_model

from apps.accounts.models import Membership

from .models import ContactMethod, NotificationRule


def contact(user, kind: str) -> str | None:
    """The user's address of this kind (a verified one first), or None."""
    if user is None:
        return None
    address = (
        ContactMethod.objects.filter(user=user, kind=kind)
        .order_by("-verified", "created_at")
        .values_list("address", flat=True)
        .first()
    )
    if address is None and kind == ContactMethod.Kind.EMAIL and user.email:
        return user.email
    return address


def team_emails(team_id: int) -> list[str]:
    users = get_user_model().objects.filter(
        membership__team_id=team_id, is_active=True, membership__role__in=[Membership.Role.ADMIN, Membership.Role.RESPONDER]
    )
    return sorted({u.email for u in users if u.email})


def user_for_slack(slack_user_id: str):
    link = ContactMethod.objects.filter(kind=ContactMethod.Kind.SLACK, address=slack_user_id).select_related("user").first()
    return link.user if link else None


def notification_plan(user, severity: str) -> list[tuple[str, str, int]]:
    """What escalation does when it targets this user for an incident of this severity:
    [(channel, address, delay_minutes)], in order.  No rule: Slack, else e-mail, at once."""
    plan = []
    for rule in NotificationRule.objects.filter(user=user):
        if rule.severities and severity not in rule.severities:
            continue
        address = contact(user, rule.kind)
        if address:
            plan.append((rule.kind, address, rule.delay_minutes))
    if not plan:
        for kind in (ContactMethod.Kind.SLACK, ContactMethod.Kind.EMAIL):
            address = contact(user, kind)
            if address:
                plan.append((kind, address, 0))
                break
    return plan
