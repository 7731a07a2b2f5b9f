import json
from io import StringIO
from urllib.parse import urlsplit

import pytest
from django.core.management import CommandError, call_command

from apps.accounts.models import ApiKey
from apps.audit.models import AuditEntry
from apps.incidents.models import Incident
from apps.integrations.models import Integration

from .conftest import load_fixture
from .factories import IncidentFactory, MembershipFactory, TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def run(*args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_createapikey_prints_a_working_key_once(client, service):
    out, err = run("createapikey", "grafana", "--scopes", "incidents:read")

    key = out.strip()
    assert key.startswith("imk_") and "\n" not in key
    assert "will not be shown again" in err and key not in err
    stored = ApiKey.objects.get()
    assert (stored.name, stored.scopes, stored.prefix) == ("grafana", ["incidents:read"], key[:10])
    assert key not in stored.key_hash  # only the digest is kept
    assert AuditEntry.objects.get(verb="apikey.created").actor_label == "manage.py createapikey"

    headers = {"Authorization": f"Bearer {key}"}
    incident = IncidentFactory(service=service)
    assert client.get("/api/v1/incidents/", headers=headers).json()["count"] == 1
    assert client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/", headers=headers).status_code == 403


def test_createapikey_for_a_user_with_both_scopes(client, service):
    MembershipFactory(user=UserFactory(username="ops-lead"), team=service.team)
    MembershipFactory(user=UserFactory(username="ops-lead"), team=TeamFactory(slug="other"))
    with pytest.raises(CommandError, match="Say which team"):  # two teams: which one?
        run("createapikey", "pager", "--scopes", "incidents:read", "--user", "ops-lead")
    out, _ = run("createapikey", "pager", "--scopes", "incidents:read", "incidents:write", "--user", "ops-lead",
                 "--team", service.team.slug)
    incident = IncidentFactory(service=service)

    response = client.post(
        f"/api/v1/incidents/{incident.pk}/acknowledge/", headers={"Authorization": f"Bearer {out.strip()}"}
    )

    assert response.status_code == 200 and response.json()["acknowledged_by"] == "ops-lead"


@pytest.mark.parametrize(
    "args, message",
    [
        (["ci", "--scopes", "incidents:admin"], "Unknown scope incidents:admin"),
        (["ci"], "--scopes"),
        (["ci", "--scopes", "incidents:read", "--user", "nobody"], "No active user named 'nobody'"),
        (["", "--scopes", "incidents:read"], "name of 1 to 100 characters"),
    ],
)
def test_createapikey_refuses_bad_arguments(db, args, message):
    with pytest.raises(CommandError, match=message):
        run("createapikey", *args)
    assert not ApiKey.objects.exists()


def test_createintegration_prints_a_working_ingestion_url(client, service):
    out, err = run("createintegration", "prometheus-prod", "--kind", "alertmanager", "--service", "checkout")

    url = out.strip()
    assert url.startswith("http://127.0.0.1:8000/api/v1/ingest/im_") and url.endswith("/alertmanager")
    assert "will not be shown again" in err
    integration = Integration.objects.get()
    assert (integration.name, integration.kind, integration.service) == ("prometheus-prod", "alertmanager", service)

    response = client.post(
        urlsplit(url).path,
        data=json.dumps(load_fixture("alertmanager_webhook_v4_firing.json")),
        content_type="application/json",
    )

    assert response.status_code == 202
    assert Incident.objects.filter(service=service).count() == 2


@pytest.mark.parametrize(
    "args, message",
    [
        (["x", "--kind", "alertmanager", "--service", "nope"], r"No service with slug 'nope' \(known: checkout\)"),
        (["x", "--kind", "nagios", "--service", "checkout"], "invalid choice: 'nagios'"),
        (["x", "--service", "checkout"], "--kind"),
        (["x" * 101, "--kind", "generic", "--service", "checkout"], "name of 1 to 100 characters"),
    ],
)
def test_createintegration_refuses_bad_arguments(service, args, message):
    with pytest.raises(CommandError, match=message):
        run("createintegration", *args)
    assert not Integration.objects.exists()
