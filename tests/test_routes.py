"""Routes: one integration's alerts go to services by their labels (Alertmanager matchers)."""

import json
from urllib.parse import urlsplit

import pytest
from django.core.exceptions import ValidationError

from apps.accounts.services import create_api_key
from apps.audit.models import AuditEntry
from apps.audit.services import SYSTEM
from apps.incidents.models import Alert, Incident
from apps.integrations.matchers import MatcherError, parse_matchers
from apps.integrations.models import Route
from apps.integrations.services import create_integration, ingestion_url

from .conftest import load_fixture
from .factories import MembershipFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db


def matches(spec, **labels):
    return all(m.matches(labels) for m in parse_matchers(spec))


def test_matchers_read_as_alertmanager_reads_them():
    assert matches(['service="checkout"'], service="checkout")
    assert not matches(['service="checkout"'], service="checkout-eu")
    assert matches(["service = checkout"], service="checkout")  # unquoted, spaced: the classic syntax
    assert matches(['env!="prod"'], service="x")  # a missing label is ""
    assert not matches(['env!="prod"'], env="prod")
    # Regexes are anchored at both ends.
    assert matches(['team=~"pay.*|billing"'], team="payments")
    assert not matches(['team=~"pay"'], team="payments")
    assert not matches(['team=~"pay.*|billing"'], team="billing-eu")
    assert matches(['instance!~"canary-.*"'], instance="web-1")
    assert not matches(['instance!~"canary-.*"'], instance="canary-2")
    assert matches(['env=~""'])  # matches the label's absence
    # One string, in braces, commas inside quotes kept.
    assert matches('{service="checkout", msg=~"a,b|c"}', service="checkout", msg="a,b")
    assert [str(m) for m in parse_matchers(r'{path="a\"b"}')] == [r'path="a\"b"']


@pytest.mark.parametrize("spec, says", [
    (['team=~"(pay"'], "not a valid RE2"),
    (['team=~"(?=pay)"'], "not a valid RE2"),  # lookahead: Python's re has it, RE2 does not
    (["team"], "is not a matcher"),
    ([3], "list of strings"),
    ({"team": "x"}, "list of strings"),
])
def test_bad_matchers_are_refused_naming_the_problem(spec, says):
    with pytest.raises(MatcherError, match=says):
        parse_matchers(spec)


@pytest.fixture
def storm_setup():
    """One Alertmanager for three services, told apart by the `service` label."""
    default = ServiceFactory(slug="platform", name="Platform")
    checkout = ServiceFactory(slug="checkout", name="Checkout")
    search = ServiceFactory(slug="search", name="Search")
    integration, token = create_integration(name="prod alertmanager", kind="alertmanager", service=default)
    Route.objects.create(integration=integration, position=1, name="checkout", matchers=['service="checkout"'], service=checkout)
    Route.objects.create(integration=integration, position=2, name="search and ranking",
                         matchers=['service=~"search|ranking"', 'env!="dev"'], service=search)
    return {"integration": integration, "path": urlsplit(ingestion_url(token, "alertmanager")).path,
            "default": default, "checkout": checkout, "search": search}


def am_body(*label_sets):
    body = load_fixture("alertmanager_webhook_v4_firing.json")
    template = body["alerts"][0]
    body["alerts"] = [
        {**template, "fingerprint": f"{n:016x}", "labels": {"alertname": "LLMLatencyHigh", **labels}}
        for n, labels in enumerate(label_sets)
    ]
    return body


def post(client, path, body):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def test_one_alertmanager_feeds_each_service_by_its_label_and_each_alert_says_which_route(client, storm_setup):
    answer = post(client, storm_setup["path"], am_body(
        {"service": "checkout"}, {"service": "ranking", "env": "prod"}, {"service": "ranking", "env": "dev"},
        {"service": "ledger"},
    ))
    assert answer.status_code == 202
    incidents = [Incident.objects.get(pk=a["incident"]) for a in answer.json()["alerts"]]
    assert [i.service.slug for i in incidents] == ["checkout", "search", "platform", "platform"]
    routes = [Alert.objects.get(pk=a["alert"]).route for a in answer.json()["alerts"]]
    assert routes == [
        'route “checkout” (service="checkout")',
        'route “search and ranking” (service=~"search|ranking", env!="dev")',
        "default route", "default route",
    ]


def test_dedup_keys_live_within_the_routed_service(client, storm_setup):
    """The same alert again finds its incident on the service it was routed to."""
    first = post(client, storm_setup["path"], am_body({"service": "checkout"})).json()["alerts"][0]
    again = post(client, storm_setup["path"], am_body({"service": "checkout"})).json()["alerts"][0]
    assert (again["incident"], again["deduplicated"]) == (first["incident"], True)
    assert Incident.objects.get(pk=first["incident"]).alert_count == 2


def test_a_route_to_a_disabled_or_deleted_service_falls_back_to_the_default_and_says_so(client, storm_setup):
    storm_setup["checkout"].is_active = False
    storm_setup["checkout"].save()
    answer = post(client, storm_setup["path"], am_body({"service": "checkout"}))
    assert answer.status_code == 202
    alert = Alert.objects.get()
    assert alert.incident.service == storm_setup["default"]
    assert "disabled" in alert.route and alert.route.endswith("default route")

    Route.objects.filter(name="search and ranking").update(service=None)  # as SET_NULL leaves it
    Route.objects.first().save()  # (update() bypasses signals: any save tells the processes)
    post(client, storm_setup["path"], am_body({"service": "search"}))
    assert Alert.objects.latest("id").incident.service == storm_setup["default"]


def test_a_route_with_a_bad_regex_is_refused_when_saved_naming_the_field(storm_setup):
    route = Route(integration=storm_setup["integration"], matchers=['service=~"(checkout"'], service=storm_setup["checkout"])
    with pytest.raises(ValidationError) as refused:
        route.full_clean()
    assert "matchers" in refused.value.message_dict


@pytest.fixture
def admin_client(client, storm_setup):
    user = UserFactory(username="ada", is_staff=True, is_superuser=True)
    client.force_login(user)
    return client


def test_routes_are_edited_in_admin_and_a_bad_regex_is_a_form_error(admin_client, storm_setup):
    integration = storm_setup["integration"]
    url = f"/admin/integrations/integration/{integration.pk}/change/"
    page = admin_client.get(url)
    assert page.status_code == 200 and b"Test a payload" in page.content
    form = page.context["adminform"].form
    routes = list(integration.routes.order_by("position", "pk"))
    data = {name: form.initial.get(name, "") for name in form.fields if name != "new_signing_secret"}
    data.update({
        "is_active": "on", "service": integration.service_id, "templates": "{}",
        "routes-TOTAL_FORMS": "3", "routes-INITIAL_FORMS": "2", "routes-MIN_NUM_FORMS": "0", "routes-MAX_NUM_FORMS": "1000",
    })
    data = {k: v for k, v in data.items() if v is not None}
    for i, route in enumerate(routes):
        data.update({f"routes-{i}-id": route.pk, f"routes-{i}-integration": integration.pk, f"routes-{i}-position": route.position,
                     f"routes-{i}-name": route.name, f"routes-{i}-matchers": json.dumps(route.matchers),
                     f"routes-{i}-service": route.service_id, f"routes-{i}-is_active": "on"})
    data.update({"routes-2-integration": integration.pk, "routes-2-position": 3, "routes-2-name": "broken",
                 "routes-2-matchers": json.dumps(['team=~"(pay"']), "routes-2-service": storm_setup["search"].pk,
                 "routes-2-is_active": "on"})
    refused = admin_client.post(url, data)
    assert refused.status_code == 200  # the form again, with the error
    assert "not a valid RE2" in str(refused.context["inline_admin_formsets"][0].formset.errors[2]["matchers"])
    assert integration.routes.count() == 2

    data["routes-2-matchers"] = json.dumps(['team=~"pay.*"'])
    assert admin_client.post(url, data).status_code == 302
    assert integration.routes.get(name="broken").matchers == ['team=~"pay.*"']


def test_the_admin_preview_shows_where_a_pasted_payload_goes(admin_client, storm_setup):
    url = f"/admin/integrations/integration/{storm_setup['integration'].pk}/preview/"
    page = admin_client.post(url, {"payload": json.dumps(am_body({"service": "checkout"}, {"service": "other"}))})
    assert page.status_code == 200
    rows = [(p.service, p.route) for p in page.context["previews"]]
    assert rows == [("Checkout", 'route “checkout” (service="checkout")'), ("Platform", "default route")]
    assert Alert.objects.count() == 0  # nothing stored
    bad = admin_client.post(url, {"payload": json.dumps({"alerts": "nope"})})
    assert "alerts" in str(bad.context["form"].errors["payload"])


def api(client, key):
    return {"HTTP_AUTHORIZATION": f"Bearer {key}"}


def test_routes_through_the_api_with_scopes_a_400_naming_the_field_and_an_audit_entry(client, storm_setup):
    integration = storm_setup["integration"]
    base = f"/api/v1/integrations/{integration.pk}/routes/"
    _, reader = create_api_key(name="reader", scopes=["integrations:read"], actor=SYSTEM)
    _, writer = create_api_key(name="terraform", scopes=["integrations:write", "integrations:read"], actor=SYSTEM)
    _, incidents_only = create_api_key(name="bot", scopes=["incidents:read"], actor=SYSTEM)

    listed = client.get(base, **api(client, reader))
    assert listed.status_code == 200
    assert [r["name"] for r in listed.json()] == ["checkout", "search and ranking"]
    assert client.get(base, **api(client, incidents_only)).status_code == 403
    assert client.post(base, {}, content_type="application/json", **api(client, reader)).status_code == 403

    bad = client.post(base, {"matchers": ['team=~"(pay"'], "service": "search"}, content_type="application/json", **api(client, writer))
    assert bad.status_code == 400
    assert bad.json()["field"] == "matchers" and "RE2" in bad.json()["error"]
    unknown = client.post(base, {"matchers": ['team="x"'], "service": "nope"}, content_type="application/json", **api(client, writer))
    assert (unknown.status_code, unknown.json()["field"]) == (400, "service")

    made = client.post(base, {"name": "payments", "position": 0, "matchers": '{team=~"pay.*"}', "service": "search"},
                       content_type="application/json", **api(client, writer))
    assert made.status_code == 201, made.json()
    assert AuditEntry.objects.get(verb="route.created").data["matchers"] == '{team=~"pay.*"}'
    answer = post(client, storm_setup["path"], am_body({"team": "payments", "service": "checkout"}))
    assert Incident.objects.get(pk=answer.json()["alerts"][0]["incident"]).service.slug == "search"  # position 0 first

    # A preview is a POST, and tells what a change of the routes would do: it takes the write scope.
    preview = client.post(f"{base}preview/", am_body({"service": "checkout"}), content_type="application/json", **api(client, reader))
    assert preview.status_code == 403
    preview = client.post(f"{base}preview/", am_body({"service": "checkout"}), content_type="application/json", **api(client, writer))
    assert preview.json() == [{"title": preview.json()[0]["title"], "labels": {"alertname": "LLMLatencyHigh", "service": "checkout"},
                               "service": "Checkout", "route": 'route “checkout” (service="checkout")'}]
    bad_payload = client.post(f"{base}preview/", {"alerts": []}, content_type="application/json", **api(client, writer))
    assert (bad_payload.status_code, bad_payload.json()["field"]) == (400, "alerts")

    assert client.delete(f"{base}{made.json()['id']}/", **api(client, writer)).status_code == 204
    assert AuditEntry.objects.filter(verb="route.deleted").count() == 1


def test_a_team_admin_may_edit_routes_a_responder_may_not(client, storm_setup):
    base = f"/api/v1/integrations/{storm_setup['integration'].pk}/routes/"
    responder = MembershipFactory(role="responder").user
    client.force_login(responder)
    assert client.get(base).status_code == 403
    admin = MembershipFactory(role="admin").user
    client.force_login(admin)
    assert client.get(base).status_code == 200


def test_the_alert_api_shows_its_route(client, storm_setup):
    answer = post(client, storm_setup["path"], am_body({"service": "checkout"})).json()["alerts"][0]
    _, key = create_api_key(name="reader", scopes=["incidents:read"], actor=SYSTEM)
    detail = client.get(f"/api/v1/incidents/{answer['incident']}/", **api(client, key)).json()
    assert detail["alerts"][0]["route"] == 'route “checkout” (service="checkout")'


def test_routing_costs_no_query_per_request_once_the_routes_are_loaded(client, storm_setup, django_assert_num_queries):
    body = am_body(*({"service": "checkout", "instance": f"i-{n}"} for n in range(50)), {"service": "ledger"})
    post(client, storm_setup["path"], body)  # opens the incidents, loads the routes
    post(client, storm_setup["path"], body)
    with django_assert_num_queries(2):  # one repeats' call per service routed to: checkout, platform
        answer = post(client, storm_setup["path"], body)
    assert {a["action"] for a in answer.json()["alerts"]} == {"appended"}
