from datetime import timedelta

import pytest
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.escalation.models import EscalationPolicy, EscalationRule, EscalationState
from apps.incidents.models import Incident, MaintenanceWindow

pytestmark = pytest.mark.django_db


@pytest.fixture
def paging_service(service, responder):
    policy = EscalationPolicy.objects.create(name="default", service=service)
    rule = EscalationRule.objects.create(policy=policy, delay_minutes=0, channels=["email"])
    rule.users.add(responder)
    return service


def alert(client, path, env, key):
    body = {"title": f"Model latency high ({env})", "dedup_key": key, "labels": {"env": env}}
    return client.post(path, data=body, content_type="application/json")


def test_alerts_in_a_maintenance_window_are_recorded_but_do_not_page(client, ingest_path, paging_service):
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=paging_service, matchers={"env": "staging"}, reason="GPU driver upgrade",
        starts_at=now - timedelta(minutes=5), ends_at=now + timedelta(hours=1),
    )
    path = ingest_path("generic")

    assert alert(client, path, "staging", "a").status_code == 202
    assert alert(client, path, "prod", "b").status_code == 202

    silenced, paged = Incident.objects.get(dedup_key="a"), Incident.objects.get(dedup_key="b")
    assert not EscalationState.objects.filter(incident=silenced).exists()
    assert EscalationState.objects.filter(incident=paged).exists()
    entry = AuditEntry.objects.get(incident=silenced, verb="incident.paging_suppressed")
    assert entry.data["reason"] == "GPU driver upgrade"


def test_a_window_that_is_over_silences_nothing(client, ingest_path, paging_service):
    now = timezone.now()
    MaintenanceWindow.objects.create(
        service=None, reason="done", starts_at=now - timedelta(hours=2), ends_at=now - timedelta(hours=1),
    )
    alert(client, ingest_path("generic"), "staging", "c")
    assert EscalationState.objects.filter(incident__dedup_key="c").exists()


def test_matchers_must_be_labels(paging_service):
    from django.core.exceptions import ValidationError

    now = timezone.now()
    window = MaintenanceWindow(reason="x", matchers=["env"], starts_at=now, ends_at=now + timedelta(hours=1))
    with pytest.raises(ValidationError):
        window.full_clean()
