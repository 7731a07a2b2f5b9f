"""Schemathesis against the REST API's own OpenAPI document, /api/schema/ (issue 15):
every operation, with parameters and bodies generated from the document, called with
a key holding every scope through the WSGI application gunicorn serves, on the real
database.  No 5xx, and every response as the document says: its status code, content
type, headers and body.  Example counts come from the Hypothesis profile
(tests/conftest.py)."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from schemathesis.specs.openapi.checks import negative_data_rejection, positive_data_acceptance

from apps.accounts.services import create_api_key
from apps.incidents.models import Alert
from apps.integrations.models import Route
from apps.integrations.services import create_integration
from incident_manager.wsgi import application

from .factories import IncidentFactory, MembershipFactory, UserFactory

SCOPES = ["incidents:read", "incidents:write", "integrations:read", "integrations:write"]

# Loaded when the module is collected (schemathesis's lazy loading from a fixture
# does not work with this pytest); the document needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)


# Ids of the rows `bearer` makes, by path parameter; fixed for a test, since Hypothesis
# wants the same choices each time it replays an example (the rows may be gone by then).
known_ids: dict[str, list[int]] = {}


@schema.hook
def flatmap_path_parameters(context, path_parameters):
    """Half the ids are of rows that exist, so that operations get past their 404."""
    if path_parameters is None:
        return st.none()
    ids = dict(known_ids, id=known_ids["route"] if "/routes/" in context.operation.path else known_ids["incident"])
    return st.fixed_dictionaries(
        {name: st.sampled_from([value, *ids.get(name, [])]) for name, value in path_parameters.items()}
    )


@pytest.fixture
def wsgi_in_the_test(db):
    """Requests served in this process leave the test's connection, and its transaction,
    open (as Django's test client arranges for its own)."""
    for signal in (signals.request_started, signals.request_finished):
        signal.disconnect(close_old_connections)
    yield
    for signal in (signals.request_started, signals.request_finished):
        signal.connect(close_old_connections)


@pytest.fixture
def bearer(wsgi_in_the_test, service):
    """A key with every scope, and rows for the operations to find: an incident with an
    alert, a person to assign, an integration with a route."""
    incident = IncidentFactory(service=service)
    Alert.objects.create(
        incident=incident, source="generic", status="firing", title="t", severity="high", dedup_key=incident.dedup_key,
        fingerprint=incident.fingerprint, payload={"title": "t"}, received_at=incident.first_alert_at,
    )
    MembershipFactory(team=service.team, user=UserFactory(username="rita"))
    integration, _ = create_integration(name="am", kind="alertmanager", service=service)
    route = Route.objects.create(integration=integration, matchers=['env="prod"'], service=service)
    known_ids.update(incident=[incident.pk], route=[route.pk], integration_pk=[integration.pk])
    _, token = create_api_key(name="schemathesis", scopes=SCOPES)
    return {"Authorization": f"Bearer {token}"}


@schema.parametrize()
@settings(
    # Half the profile's examples: each costs several requests, and schemathesis adds its
    # own boundary cases (about 900 in all) whatever the count.
    max_examples=settings.default.max_examples // 2,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],  # rows shared by all examples
)
def test_every_operation_answers_as_the_document_says(case, bearer):
    # Every check but two about requests, not responses: the document cannot say that
    # an assignee must be an active user, that a note must hold more than blanks or a
    # merge name an open incident (valid requests refused), and DRF's pagination ignores
    # a page_size that is not a number (invalid requests answered).
    case.call_and_validate(headers=bearer, excluded_checks=[positive_data_acceptance, negative_data_rejection])


def test_an_unknown_api_url_is_a_404_in_the_apis_error_shape(client):
    """As the document says: an id that is not a number matches no URL at all."""
    response = client.get("/api/v1/incidents/0.5/")
    assert response.status_code == 404 and response.json() == {"error": "Not found."}
    assert "text/html" in client.get("/no-such-page/")["Content-Type"]
