"""Fuzzing what senders send (issue 15): any JSON value, and shapes close to each
sender's format (its keys, with values of the right and of wrong types, deep nesting,
huge numbers, odd strings with NUL and lone surrogates, times far from now), is
accepted or refused with a 4xx naming the field: never an exception or a 500.
Whatever is accepted fits its columns and reads back through the API.

Through the real endpoints on the real database, and on the parsers alone.  Example
counts come from the Hypothesis profile (tests/conftest.py): modest in the normal
suite, larger under `make fuzz`.
"""

import json
from datetime import UTC, datetime, timedelta, timezone
from urllib.parse import quote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apps.accounts.services import create_api_key
from apps.incidents.models import Alert
from apps.integrations.inbound import decode_json
from apps.integrations.parsers import PayloadError, alertmanager, generic, grafana, opsgenie, pagerduty
from apps.integrations.parsers.validation import PLAUSIBLE
from apps.integrations.services import create_integration
from incident_manager.input_limits import MAX_DEPTH

pytestmark = pytest.mark.django_db

# One integration per test serves all of its examples, which add up in its database.
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

# --- Strategies -------------------------------------------------------------------


def mostly(usual, rare, one_in: int = 8):
    """`usual`, and one time in `one_in` `rare`: so that most examples get through to
    the database, and the rest try what should not."""
    return st.integers(1, one_in).flatmap(lambda n: rare if n == 1 else usual)


odd_text = mostly(
    st.text(max_size=30),
    st.text(st.characters(exclude_categories=()), max_size=10)  # lone surrogates too
    | st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "\u202e", "💥", "x" * 600, "9" * 40]),
)
numbers = mostly(
    st.integers(-(2**31), 2**31) | st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([2**63, 2**64, -(2**63) - 1, 10**30, 10**400]) | st.integers()
    | st.floats(),  # NaN and the infinities too: json.dumps writes them, no parser may take them
)
scalars = st.none() | st.booleans() | numbers | odd_text


def nested(depth: int):
    value = "bottom"
    for _ in range(depth):
        value = [value]
    return value


json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4), max_leaves=12
)
anything = mostly(json_values, st.integers(MAX_DEPTH - 3, MAX_DEPTH + 300).map(nested), one_in=4)


def maybe(strategy):
    """Mostly the right kind of value, now and then anything at all."""
    return mostly(strategy, anything)


offsets = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-14))])
timestamps = st.datetimes(timezones=offsets).map(datetime.isoformat) | st.sampled_from(
    ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "10000-01-01T00:00:00Z",
     "2026-02-30T00:00:00Z", "2026-12-01T10:00:00", "2026-11-25T16:58:23.749310638Z", "yesterday"]
)
# Label names the code reads (severity, routing, identity, classification), and any others.
label_names = st.sampled_from(["alertname", "severity", "priority", "service", "env", "model", "cluster"]) | odd_text
labels = st.dictionaries(label_names, odd_text | numbers | st.booleans(), min_size=1, max_size=4)


def am_message(version: str):
    alert = st.fixed_dictionaries(
        {"labels": maybe(labels), "status": maybe(st.sampled_from(["firing", "resolved"]))},
        optional={"annotations": maybe(labels), "startsAt": maybe(timestamps), "endsAt": maybe(timestamps),
                  "fingerprint": maybe(odd_text)},
    )
    return st.fixed_dictionaries(
        {"alerts": maybe(st.lists(maybe(alert), min_size=1, max_size=3))},
        optional={"version": maybe(st.just(version)), "groupKey": maybe(odd_text), "receiver": maybe(odd_text),
                  "commonLabels": maybe(labels), "truncatedAlerts": maybe(st.integers(0, 10)),
                  "title": maybe(odd_text)},
    )


generic_alert = st.fixed_dictionaries(
    {"title": maybe(odd_text)},
    optional={"severity": maybe(st.sampled_from(["critical", "high", "p1", "warn", "none"])),
              "status": maybe(st.sampled_from(["firing", "resolved"])), "dedup_key": maybe(odd_text),
              "description": maybe(odd_text), "source": maybe(odd_text), "labels": maybe(labels),
              "timestamp": maybe(timestamps)},
)
generic_body = generic_alert | st.lists(maybe(generic_alert), max_size=3)


def pagerduty_event(routing_key: str):
    payload = st.fixed_dictionaries(
        {"summary": maybe(odd_text), "source": maybe(odd_text),
         "severity": maybe(st.sampled_from(["critical", "error", "warning", "info"]))},
        optional={"timestamp": maybe(timestamps), "component": maybe(odd_text), "group": maybe(odd_text),
                  "class": maybe(odd_text), "custom_details": maybe(st.dictionaries(odd_text, anything, max_size=3))},
    )
    return st.fixed_dictionaries(
        {"routing_key": maybe(st.just(routing_key)),
         "event_action": maybe(st.sampled_from(["trigger", "acknowledge", "resolve"]))},
        optional={"dedup_key": maybe(odd_text), "payload": maybe(payload)},
    )


opsgenie_alert = st.fixed_dictionaries(
    {"message": maybe(odd_text)},
    optional={"alias": maybe(odd_text), "description": maybe(odd_text), "details": maybe(labels),
              "priority": maybe(st.sampled_from(["P1", "P2", "P3", "P4", "P5"])),
              "tags": maybe(st.lists(odd_text, max_size=3)), "entity": maybe(odd_text), "source": maybe(odd_text)},
)


SHAPES = {  # (the PagerDuty endpoint's tests draw events with their integration's key)
    "alertmanager": am_message("4"),
    "grafana": am_message("1"),
    "generic": generic_body,
    "pagerduty": pagerduty_event("e93facc04764012d7bfb002500d5d1a6"),
    "opsgenie": opsgenie_alert,
}


def body(strategy):
    """A request body: the value as JSON, or now and then bytes that are not JSON at all."""
    return mostly(strategy.map(lambda value: json.dumps(value).encode()), st.binary(max_size=40))


# --- Through the endpoints ----------------------------------------------------------


@pytest.fixture
def api(db):
    _, token = create_api_key(name="fuzz", scopes=["incidents:read"])
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}


def read_back(client, api):
    """An accepted alert's incident answers the API (one whose times Python cannot
    read would be a 500 from then on)."""
    incident_id = Alert.objects.order_by("-id").values_list("incident_id", flat=True).first()
    if incident_id is not None:
        assert client.get(f"/api/v1/incidents/{incident_id}/", **api).status_code == 200


def check_ingest_answer(client, api, response):
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        answer = response.json()
        assert answer["field"] and answer["error"]
        assert "database cannot store" not in answer["error"], answer  # the parsers let it through
    else:
        read_back(client, api)


@pytest.fixture(params=["alertmanager", "grafana", "generic"])
def sender(request, ingest_path):
    """A format the ingest URL reads, and an integration's URL for it."""
    return request.param, ingest_path(request.param)


@shared_fixtures
@given(data=st.data())
def test_the_ingest_endpoints_answer_any_body_with_a_202_or_a_400_naming_the_field(client, sender, api, data):
    kind, path = sender
    sent = data.draw(body(maybe(SHAPES[kind])))
    check_ingest_answer(client, api, client.post(path, sent, content_type="application/json"))


@pytest.fixture
def templated_path(service):
    integration, token = create_integration(name="mapped", kind="generic", service=service)
    integration.templates = {
        "title": "{{ payload.name }} {{ payload.tags | join(', ') }}",
        "severity": "{{ payload.level | lower }}",
        "dedup_key": "{{ payload.id }}-{{ payload.tags | length }}",
        "description": "{% for k, v in payload.details.items() %}{{ k }}={{ v * 2 }} {% endfor %}",
        "status": "{{ 'resolved' if payload.ok else 'firing' }}",
    }
    integration.save()
    return f"/api/v1/ingest/{token}/generic"


templated_payloads = st.fixed_dictionaries(
    {"name": maybe(odd_text)},
    optional={"tags": maybe(st.lists(odd_text)), "level": maybe(st.sampled_from(["high", "P2"])),
              "id": anything, "details": maybe(st.dictionaries(odd_text, scalars)), "ok": anything},
)


@shared_fixtures
@given(sent=body(maybe(templated_payloads)))
def test_generic_templates_answer_any_payload_with_a_202_or_a_400_naming_the_field(client, templated_path, api, sent):
    check_ingest_answer(client, api, client.post(templated_path, sent, content_type="application/json"))


@pytest.fixture
def routing_key(service):
    return create_integration(name="pd", kind="pagerduty", service=service)[1]


@shared_fixtures
@given(data=st.data())
def test_the_pagerduty_endpoint_answers_any_event_with_a_202_or_its_400(client, routing_key, api, data):
    sent = data.draw(body(maybe(pagerduty_event(routing_key))))
    response = client.post("/v2/enqueue", sent, content_type="application/json")
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        errors = response.json()["errors"]
        assert errors and "cannot be stored" not in errors[0]
    else:
        read_back(client, api)


@pytest.fixture
def genie(service):
    return {"HTTP_AUTHORIZATION": f"GenieKey {create_integration(name='og', kind='opsgenie', service=service)[1]}"}


opsgenie_actions = st.tuples(odd_text.filter(bool), st.sampled_from(["close", "acknowledge"])).map(
    lambda alias_action: f"/opsgenie/v2/alerts/{quote(alias_action[0], safe='', errors='surrogatepass')}"
    f"/{alias_action[1]}?identifierType=alias"
)


@shared_fixtures
@given(path=st.just("/opsgenie/v2/alerts") | opsgenie_actions, sent=body(maybe(opsgenie_alert)))
def test_the_opsgenie_endpoints_answer_any_request_with_a_202_or_a_422_naming_the_field(client, genie, api, path, sent):
    response = client.post(path, sent, content_type="application/json", **genie)
    # 404: an alias with a line break matches no URL.
    assert response.status_code in (202, 400, 404, 422), response.content
    if response.status_code == 422:
        assert len(response.json()["errors"]) == 1, response.content  # {field: problem}
    elif response.status_code == 400:
        assert response.json()["field"] == "path"  # NUL in the alias
    elif response.status_code == 202:
        read_back(client, api)


forms = st.dictionaries(odd_text, odd_text | json_values.map(json.dumps), max_size=3).map(
    lambda form: "&".join(f"{quote(k, errors='surrogatepass')}={quote(v, errors='surrogatepass')}" for k, v in form.items())
)


@shared_fixtures
@given(
    path=st.sampled_from(["/integrations/slack/events", "/integrations/twilio/status/1",
                          "/integrations/twilio/voice/1/gather"]),
    sent=st.tuples(st.just("application/json"), body(json_values))
    | st.tuples(st.just("application/x-www-form-urlencoded"), forms),
)
def test_slack_and_twilio_callbacks_answer_any_body_with_a_4xx(client, path, sent):
    content_type, data = sent
    response = client.post(path, data, content_type=content_type)
    assert 400 <= response.status_code < 500, response.content


# --- The parsers alone --------------------------------------------------------------

PARSERS = {
    "alertmanager": alertmanager.parse,
    "grafana": grafana.parse,
    "generic": generic.parse,
    "pagerduty": pagerduty.parse,
    "opsgenie": opsgenie.parse_create,
}
LIMITS = {
    field.name: field.max_length for field in Alert._meta.get_fields() if getattr(field, "max_length", None)
}


@pytest.mark.parametrize("kind", PARSERS)
@shared_fixtures
@given(data=st.data())
def test_a_parser_returns_events_that_fit_their_columns_or_names_the_field_at_fault(kind, data):
    sent = data.draw(body(maybe(SHAPES[kind])))
    try:
        events = PARSERS[kind](decode_json(sent))
    except PayloadError as exc:
        assert exc.field and exc.message
        return
    now = datetime.now(UTC)
    for event in events:
        for name in ("title", "dedup_key", "fingerprint", "source", "group_key", "status", "severity"):
            assert len(getattr(event, name)) <= LIMITS[name], name
        assert all(type(k) is str and type(v) is str for k, v in event.labels.items())
        assert event.starts_at is None or abs(event.starts_at - now) <= PLAUSIBLE + timedelta(minutes=1)
        orjson.dumps([{"payload": event.payload, "labels": event.labels}])  # as ingest stores them
