"""The repeats' database function (apps/incidents/sql/append_repeats.sql) and the
Python path (ingest, dedup) must agree on the alert columns and on where a key
routes: the function serves most of a storm, the Python path the rest, and a
repeat must land where the Python path would have put it (commit 3603f47 repaired
a drift between the two that no test caught)."""

import re
from pathlib import Path

import pytest
from django.db import transaction
from django.utils import timezone

from apps.audit.services import SYSTEM
from apps.incidents import dedup, ingest
from apps.incidents.events import AlertEvent
from apps.incidents.models import Alert, Incident, IncidentKey

from .factories import ServiceFactory

SQL = (Path(ingest.__file__).parent / "sql" / "append_repeats.sql").read_text()


def test_the_function_stores_the_columns_the_python_path_stores():
    inserted = re.search(r"INSERT INTO incidents_alert \(([^)]*)\)", SQL).group(1)
    columns = [c.strip() for c in inserted.split(",")]
    assert columns == ["id", "received_at", *ingest._ALERT_COLUMNS]
    # ... which are every column of the table: a field added to Alert must be added to both.
    assert set(columns) == {f.column for f in Alert._meta.concrete_fields}
    selected = re.search(r"route\.incident_id,\s*(.*?)\s+FROM jsonb_array_elements", SQL, re.S).group(1)
    assert ["incident_id", *(c.strip().removeprefix("r.") for c in selected.split(","))] == list(ingest._ALERT_COLUMNS)


def incident(service, title, *, status=Incident.Status.TRIGGERED):
    now = timezone.now()
    return Incident.objects.create(
        title=title, severity="high", service=service, dedup_key=title, fingerprint=title,
        first_alert_at=now, last_alert_at=now, status=status,
    )


def event(key):
    return AlertEvent(title="again", status="firing", severity="high", dedup_key=key, fingerprint=key, source="test", payload={})


def function_routes(service, key):
    """Where the function puts a repeat of `key` (None: it declines), written nothing."""
    with transaction.atomic():
        results = ingest._append_repeats([event(key)], service_id=service.pk, integration_id=None, at=timezone.now())
        transaction.set_rollback(True)
    return results[0].incident_id if results else None


def python_routes(service, key):
    with transaction.atomic():
        routes = dedup.open_routes(service.pk, {key}).routes
    return routes[key].incident_id if key in routes else None


def keys(service, *rows):
    for key, kind, owner in rows:
        IncidentKey.objects.create(service=service, key=key, kind=kind, incident=owner)


ALERT, GROUP, APART = IncidentKey.Kind.ALERT, IncidentKey.Kind.GROUP, IncidentKey.Kind.APART


@pytest.mark.parametrize(
    "scenario, expected",
    [
        ("open", "a"),
        ("resolved", None),
        ("stale group and newer group", "b"),
        ("split apart, open elsewhere", "b"),
        ("only apart", None),
        ("resolved and open", "b"),
    ],
)
@pytest.mark.django_db
def test_a_repeat_routes_where_the_python_path_routes_it(scenario, expected):
    service = ServiceFactory(slug="routing")
    a = incident(service, "a", status=Incident.Status.RESOLVED if scenario.startswith("resolved") else Incident.Status.TRIGGERED)
    b = incident(service, "b")
    rows = {
        "open": [("k", ALERT, a)],
        "resolved": [("k", ALERT, a)],
        "stale group and newer group": [("k", GROUP, a), ("k", GROUP, b)],
        "split apart, open elsewhere": [("k", APART, a), ("k", ALERT, b)],
        "only apart": [("k", APART, a)],
        "resolved and open": [("k", ALERT, a), ("k", ALERT, b)],
    }[scenario]
    keys(service, *rows)
    want = {"a": a.pk, "b": b.pk, None: None}[expected]
    assert python_routes(service, "k") == want
    assert getattr(dedup.open_route(service.pk, "k"), "incident_id", None) == want  # a sender's resolve
    assert function_routes(service, "k") == want
    assert Alert.objects.count() == 0  # nothing written either way (rolled back or declined)


@pytest.mark.django_db
def test_a_request_with_one_key_routing_nowhere_goes_the_python_way_whole():
    service = ServiceFactory(slug="partial")
    keys(service, ("known", ALERT, incident(service, "a")))
    stored = ingest._append_repeats([event("known"), event("unknown")], service_id=service.pk, integration_id=None,
                                    at=timezone.now())
    assert stored is None
    assert Alert.objects.count() == 0
    ingest.ingest([event("known"), event("unknown")], service_id=service.pk, integration_id=None, actor=SYSTEM)
    assert Alert.objects.count() == 2
