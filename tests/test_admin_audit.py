"""Django admin's saves and deletes reach the audit trail (apps/audit/admin_trail.py):
who, what, and a diff of the fields that changed, inline rows included, with secrets
masked: never their value, sealed or not, anywhere in the entry."""

import json
import secrets

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.urls import reverse

from apps.accounts.models import Membership
from apps.audit.admin_trail import AuditedAdminMixin
from apps.audit.models import AuditEntry
from apps.integrations.models import Integration, Route
from apps.integrations.services import create_integration
from apps.notifications.models import SlackWorkspace, WebhookEndpoint

from .admin_forms import submit
from .factories import MembershipFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def root(client):
    user = get_user_model().objects.create_superuser("root", "root@example.org", "x")
    client.force_login(user)
    return user


def form_errors(response):
    context = response.context or {}
    form = context.get("adminform")
    return (form.form.errors if form else None, [f.formset.errors for f in context.get("inline_admin_formsets", [])],
            getattr(context.get("form"), "errors", None))


def admin_entries():
    return list(AuditEntry.objects.filter(verb__startswith="admin.").order_by("id"))


def everything_written() -> str:
    return json.dumps(list(AuditEntry.objects.values("actor_label", "verb", "data")))


def test_every_admin_of_the_site_is_audited():
    unaudited = [model._meta.label for model, model_admin in admin.site._registry.items()
                 if not isinstance(model_admin, AuditedAdminMixin)]
    assert unaudited == []


def test_changing_an_integration_and_adding_a_route_inline_are_audited_with_the_secret_masked(client, root):
    service = ServiceFactory(slug="checkout")
    integration, token = create_integration(name="Prod AM", kind="alertmanager", service=service)
    secret = f"hmac-{secrets.token_hex(16)}"

    response = submit(
        client, reverse("admin:integrations_integration_change", args=[integration.pk]),
        name="Prod Alertmanager", new_signing_secret=secret,
        **{"routes-TOTAL_FORMS": "1", "routes-0-position": "1", "routes-0-name": "gpu",
           "routes-0-matchers": '["team=\\"gpu\\""]', "routes-0-service": str(service.pk), "routes-0-is_active": "on"},
    )
    assert response.status_code == 302, form_errors(response)

    integration.refresh_from_db()
    route = Route.objects.get(integration=integration)
    changed, added = admin_entries()
    assert (changed.verb, changed.actor, changed.actor_label) == ("admin.changed", root, "root")
    assert changed.data == {
        "object": {"model": "integrations.integration", "pk": integration.pk, "repr": str(integration)},
        "diff": {"name": ["Prod AM", "Prod Alertmanager"], "signing_secret": "(set)"},
    }
    assert (added.verb, added.actor) == ("admin.added", root)
    assert added.data["object"] == {"model": "integrations.route", "pk": route.pk, "repr": "gpu"}
    assert added.data["via"] == {"model": "integrations.integration", "pk": integration.pk}
    assert added.data["diff"] == {
        "position": [None, 1], "name": [None, "gpu"], "matchers": [None, ['team="gpu"']],
        "service": [None, service.pk], "is_active": [None, True],
    }

    written = everything_written()
    for value in (secret, integration.signing_secret, token, integration.token_hash):
        assert value not in written

    # Another secret: "(changed)"; and a save that changes nothing writes nothing.
    submit(client, reverse("admin:integrations_integration_change", args=[integration.pk]), new_signing_secret="other")
    assert admin_entries()[-1].data["diff"] == {"signing_secret": "(changed)"}
    count = len(admin_entries())
    submit(client, reverse("admin:integrations_integration_change", args=[integration.pk]))
    assert len(admin_entries()) == count


def test_deleting_a_webhook_is_audited_without_its_secret(client, root):
    service = ServiceFactory()
    webhook = WebhookEndpoint(name="ops bridge", url="https://bridge:pa55word@hooks.example.org/in", service=service)
    webhook.secret = "whsec_" + secrets.token_urlsafe(24)
    webhook.save()
    sealed = webhook.secret_sealed

    response = client.post(reverse("admin:notifications_webhookendpoint_delete", args=[webhook.pk]), {"post": "yes"})
    assert response.status_code == 302
    assert not WebhookEndpoint.objects.exists()

    [deleted] = admin_entries()
    assert (deleted.verb, deleted.actor) == ("admin.deleted", root)
    assert deleted.data["object"] == {"model": "notifications.webhookendpoint", "pk": webhook.pk, "repr": str(webhook)}
    assert deleted.data["diff"]["name"] == ["ops bridge", None]
    assert deleted.data["diff"]["url"] == ["https://bridge:***@hooks.example.org/in", None]
    assert deleted.data["diff"]["secret_sealed"] == "(cleared)"
    written = everything_written()
    assert webhook.secret not in written and sealed not in written and "pa55word" not in written


def test_adding_a_webhook_and_deleting_several_at_once_are_audited(client, root):
    service = ServiceFactory()
    response = submit(client, reverse("admin:notifications_webhookendpoint_add"),
                      name="pager bridge", url="https://93.184.215.14/pager", service=str(service.pk), is_active="on")
    assert response.status_code == 302, form_errors(response)
    webhook = WebhookEndpoint.objects.get()
    [added] = admin_entries()
    assert added.verb == "admin.added"
    assert added.data["diff"]["secret_sealed"] == "(set)"
    assert added.data["diff"]["url"] == [None, "https://93.184.215.14/pager"]
    assert webhook.secret not in everything_written()

    other = WebhookEndpoint.objects.create(name="second", url="https://hooks.example.org/2", service=service)
    response = client.post(reverse("admin:notifications_webhookendpoint_changelist"),
                           {"action": "delete_selected", "_selected_action": [webhook.pk, other.pk], "post": "yes"})
    assert response.status_code == 302
    assert sorted(e.data["object"]["pk"] for e in admin_entries() if e.verb == "admin.deleted") == sorted([webhook.pk, other.pk])


def test_a_slack_tokens_change_and_a_membership_inline_are_audited_masked(client, root):
    workspace = SlackWorkspace(team_id="T0001", name="Acme")
    workspace.bot_token, workspace.signing_secret = "xoxb-old-token", "old-signing"
    workspace.save()
    submit(client, reverse("admin:notifications_slackworkspace_change", args=[workspace.pk]), bot_token="xoxb-new-token")
    [changed] = admin_entries()
    assert changed.data["diff"] == {"bot_token_sealed": "(changed)"}
    assert "xoxb" not in everything_written()

    membership = MembershipFactory(user=UserFactory(username="vic"), role=Membership.Role.VIEWER)
    team = membership.team
    response = submit(client, reverse("admin:accounts_team_change", args=[team.pk]),
                      **{"membership_set-0-role": Membership.Role.RESPONDER})
    assert response.status_code == 302, form_errors(response)
    inline = admin_entries()[-1]
    assert inline.verb == "admin.changed"
    assert inline.data["object"]["model"] == "accounts.membership"
    assert inline.data["via"] == {"model": "accounts.team", "pk": team.pk}
    assert inline.data["diff"] == {"role": [Membership.Role.VIEWER, Membership.Role.RESPONDER]}


def test_a_users_password_set_in_admin_is_audited_masked(client, root):
    user = UserFactory(username="pat")
    old_hash = user.password
    response = client.post(reverse("admin:auth_user_password_change", args=[user.pk]),
                           {"password1": "Correct-Horse-9", "password2": "Correct-Horse-9", "usable_password": "true"})
    assert response.status_code == 302, form_errors(response)
    user.refresh_from_db()
    [changed] = admin_entries()
    assert changed.verb == "admin.changed" and changed.data["object"]["model"] == "auth.user"
    assert set(changed.data["diff"].values()) == {"(changed)"}
    written = everything_written()
    assert "Correct-Horse-9" not in written and user.password not in written and old_hash not in written


def test_an_integration_added_in_admin_is_audited_without_its_token(client, root):
    service = ServiceFactory()
    response = submit(client, reverse("admin:integrations_integration_add"),
                      name="New AM", kind="alertmanager", service=str(service.pk), is_active="on")
    assert response.status_code == 302, form_errors(response)
    integration = Integration.objects.get()
    [added] = admin_entries()
    assert added.verb == "admin.added"
    assert added.data["diff"]["name"] == [None, "New AM"]
    assert added.data["diff"]["token_hash"] == "(set)"
    assert integration.token_hash not in everything_written()


def test_a_rules_people_changed_inline_on_its_policy_and_a_list_edit_are_audited(client, root):
    from apps.escalation.models import EscalationPolicy, EscalationRule
    from apps.incidents.models import ClassificationRule

    service = ServiceFactory()
    alice, bob = UserFactory(username="alice"), UserFactory(username="bob")
    policy = EscalationPolicy.objects.create(name="default", service=service)
    rule = EscalationRule.objects.create(policy=policy, position=0, delay_minutes=0)
    rule.users.set([alice])

    response = submit(client, reverse("admin:escalation_escalationpolicy_change", args=[policy.pk]),
                      **{"rules-0-users": [str(alice.pk), str(bob.pk)], "rules-0-delay_minutes": "5"})
    assert response.status_code == 302, form_errors(response)
    [changed] = admin_entries()
    assert changed.data["object"]["model"] == "escalation.escalationrule"
    assert changed.data["via"] == {"model": "escalation.escalationpolicy", "pk": policy.pk}
    assert changed.data["diff"] == {"delay_minutes": [0, 5], "users": [[alice.pk], sorted([alice.pk, bob.pk])]}

    # The change list's editable columns save through the same path.
    category = ClassificationRule._meta.get_field("category").choices[1][0]
    cr = ClassificationRule.objects.create(name="gpu", pattern="gpu", enabled=True, order=1, category=category)
    response = client.post(reverse("admin:incidents_classificationrule_changelist"), {
        "form-TOTAL_FORMS": "1", "form-INITIAL_FORMS": "1", "form-0-id": str(cr.pk), "form-0-order": "7",
        "_save": "Save",
    })
    assert response.status_code == 302
    assert admin_entries()[-1].data["diff"] == {"enabled": [True, False], "order": [1, 7]}
