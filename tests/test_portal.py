import pytest
from django.urls import reverse
from django.utils import timezone

from apps.accounts.models import Membership
from apps.audit.models import AuditEntry
from apps.incidents.models import Alert, Incident

from .conftest import load_fixture
from .factories import IncidentFactory, MembershipFactory, ServiceFactory, UserFactory

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def templates(response):
    return [t.name for t in response.templates]


def url(name, incident=None):
    return reverse(f"portal:{name}", args=[incident.pk] if incident else [])


@pytest.fixture
def incident(service):
    return IncidentFactory(service=service, title="Checkout latency p99 over 2s", severity="high")


@pytest.fixture
def rita(client, responder):
    client.force_login(responder)
    return responder


def test_pages_need_a_signed_in_user(client, incident):
    for path in (url("incident-list"), url("incident-detail", incident)):
        response = client.get(path)
        assert response.status_code == 302
        assert response.url.startswith("/accounts/login/?next=")
    assert client.post(url("incident-acknowledge", incident)).status_code == 302
    incident.refresh_from_db()
    assert incident.status == "triggered"
    # A live refresh after the session ended reloads the page instead of nesting the login form.
    fragment = client.get(url("incident-list"), **HTMX)
    assert fragment.status_code == 200 and fragment["HX-Refresh"] == "true"


def test_root_leads_to_the_list(client):
    assert client.get("/").url == url("incident-list")


def test_login_page_signs_in_and_lands_on_the_list(client, responder):
    page = client.get("/accounts/login/")
    assert b'name="login"' in page.content and b'name="password"' in page.content
    response = client.post("/accounts/login/", {"login": "rita", "password": "correct horse battery staple"})
    assert response.status_code == 302 and response.url == url("incident-list")

    listing = client.get(response.url).content.decode()
    assert '<form method="post" action="/accounts/logout/">' in listing  # allauth signs out on POST only
    confirm = client.get("/accounts/logout/")  # allauth's own pages wear the portal's layout
    assert confirm.status_code == 200 and "base.html" in templates(confirm)
    client.post("/accounts/logout/")
    assert client.get(url("incident-list")).status_code == 302


def test_list_is_newest_first_and_filters(client, rita, service):
    other = ServiceFactory(slug="search", team=service.team)
    old = IncidentFactory(service=service, severity="critical")
    acked = IncidentFactory(service=service, severity="low", status="acknowledged")
    elsewhere = IncidentFactory(service=other, severity="critical")

    def shown(**params):
        response = client.get(url("incident-list"), params)
        assert response.status_code == 200
        return list(response.context["page"])

    assert shown() == [elsewhere, acked, old]
    assert shown(status="triggered") == [elsewhere, old]
    assert shown(severity="critical") == [elsewhere, old]
    assert shown(service="checkout") == [acked, old]
    assert shown(service="checkout", severity="critical", status="triggered") == [old]
    # A filter value that matches nothing known shows nothing, not everything.
    assert shown(service="no-such-service") == []
    assert shown(status="sleeping") == []


def test_list_for_htmx_is_the_fragment(client, rita, incident):
    page = client.get(url("incident-list"))
    assert "incidents/list.html" in templates(page)
    assert b'data-live-path="/ws/incidents/"' in page.content

    fragment = client.get(url("incident-list"), {"status": "triggered"}, **HTMX)
    assert templates(fragment)[0] == "incidents/_list.html"
    assert b"<html" not in fragment.content
    assert incident.title.encode() in fragment.content
    assert "HX-Request" in fragment["Vary"]


def test_list_pages_by_fifty(client, rita, service):
    IncidentFactory.create_batch(51, service=service)
    first = client.get(url("incident-list"))
    assert len(first.context["page"]) == 50
    assert b"Page 1 of 2" in first.content
    assert len(client.get(url("incident-list"), {"page": 2}).context["page"]) == 1


def test_detail_shows_alerts_and_timeline(client, rita, ingest_path):
    client.post(ingest_path(), load_fixture("alertmanager_webhook_v4_firing.json"), content_type="application/json")
    incident = Incident.objects.get(title="CPU usage above 90% on web-01:9100")
    client.post(url("incident-note", incident), {"text": "Looking at web-01"})
    client.post(url("incident-acknowledge", incident))

    response = client.get(url("incident-detail", incident))

    assert response.status_code == 200
    assert list(response.context["alerts"]) == list(incident.alerts.all())
    verbs = [e.verb for e in response.context["timeline"]]
    assert verbs == ["incident.triggered", "incident.note_added", "incident.acknowledged"]
    html = response.content.decode()
    assert "opened the incident" in html and "Looking at web-01" in html
    assert html.index("opened the incident") < html.index("Looking at web-01")
    assert "instance=web-01:9100" in html  # labels
    assert f'data-live-path="/ws/incidents/{incident.pk}/"' in html


def test_detail_caps_the_alerts_shown(client, rita, incident):
    Alert.objects.bulk_create(
        Alert(incident=incident, source="t", status="firing", title=f"a{n}", severity="high", dedup_key="k",
              fingerprint="f", labels={}, payload={}, received_at=timezone.now())
        for n in range(105)
    )
    response = client.get(url("incident-detail", incident))
    assert len(response.context["alerts"]) == 100


def test_acknowledge_with_htmx_returns_the_detail_fragment(client, rita, incident):
    response = client.post(url("incident-acknowledge", incident), **HTMX)

    assert response.status_code == 200
    assert templates(response)[0] == "incidents/_detail.html"
    assert b"<html" not in response.content
    assert "by rita" in response.content.decode()
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == ("acknowledged", rita)
    entry = AuditEntry.objects.get(incident=incident, verb="incident.acknowledged")
    assert (entry.actor, entry.actor_label) == (rita, "rita")


def test_resolve_from_a_list_row_returns_the_row(client, rita, incident):
    response = client.post(url("incident-resolve", incident), {"fragment": "row"}, **HTMX)

    assert templates(response)[0] == "incidents/_row.html"
    html = response.content.decode()
    assert html.strip().startswith(f'<tr id="incident-{incident.pk}">')
    assert "resolved" in html and "Resolve</button>" not in html
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == ("resolved", rita)
    assert AuditEntry.objects.filter(incident=incident, verb="incident.resolved", actor=rita).exists()


def test_without_htmx_a_change_redirects_to_the_incident(client, rita, incident):
    response = client.post(url("incident-acknowledge", incident))
    assert response.status_code == 302 and response.url == url("incident-detail", incident)
    incident.refresh_from_db()
    assert incident.status == "acknowledged"


def test_an_invalid_transition_shows_the_reason(client, rita, incident):
    client.post(url("incident-resolve", incident))

    response = client.post(url("incident-acknowledge", incident), **HTMX)
    assert response.status_code == 200
    assert "only a triggered incident can be acknowledged" in response.content.decode()
    row = client.post(url("incident-resolve", incident), {"fragment": "row"}, **HTMX)
    assert "is already resolved" in row.content.decode()

    page = client.post(url("incident-acknowledge", incident), follow=True)
    assert page.status_code == 200
    assert "only a triggered incident can be acknowledged" in page.content.decode()
    assert AuditEntry.objects.filter(incident=incident, verb="incident.acknowledged").count() == 0


def test_notes(client, rita, incident):
    response = client.post(url("incident-note", incident), {"text": "  Rolled back deploy 142  "}, **HTMX)
    assert "Rolled back deploy 142" in response.content.decode()
    assert AuditEntry.objects.get(verb="incident.note_added").data == {"text": "Rolled back deploy 142"}

    empty = client.post(url("incident-note", incident), {"text": "   "}, **HTMX)
    assert empty.status_code == 200 and "A note needs some text." in empty.content.decode()


@pytest.mark.parametrize("role", [Membership.Role.VIEWER, None])
def test_only_responders_change_incidents(client, service, incident, role):
    user = UserFactory(username="victor")
    if role:
        MembershipFactory(user=user, team=service.team, role=role)
    client.force_login(user)

    page = client.get(url("incident-list"))
    # A viewer reads the team's incidents; someone of no team sees none of them.
    assert page.status_code == 200 and (incident.title in page.content.decode()) == bool(role)
    assert "Acknowledge</button>" not in page.content.decode()
    detail = client.get(url("incident-detail", incident))
    assert detail.status_code == (200 if role else 404) and "Acknowledge</button>" not in detail.content.decode()
    for name in ("incident-acknowledge", "incident-resolve", "incident-note"):
        assert client.post(url(name, incident), {"text": "hi"}, **HTMX).status_code == 403  # no responder role anywhere
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert not AuditEntry.objects.filter(incident=incident).exists()


def test_changes_are_post_only_and_unknown_incidents_404(client, rita, incident):
    assert client.get(url("incident-acknowledge", incident)).status_code == 405
    assert client.post(reverse("portal:incident-resolve", args=[incident.pk + 1000])).status_code == 404
    assert client.get(reverse("portal:incident-detail", args=[incident.pk + 1000])).status_code == 404


def test_unacknowledge_from_the_portal_and_the_api(client, responder, service):
    from apps.accounts.services import create_api_key

    incident = IncidentFactory(status="acknowledged", service=service)
    client.force_login(responder)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Un-acknowledge" in page

    response = client.post(f"/incidents/{incident.pk}/unacknowledge", headers={"HX-Request": "true"})
    assert response.status_code == 200
    incident.refresh_from_db()
    assert incident.status == "triggered"
    assert AuditEntry.objects.filter(incident=incident, verb="incident.unacknowledged").exists()

    refused = client.post(f"/incidents/{incident.pk}/unacknowledge", headers={"HX-Request": "true"})
    assert "only an acknowledged incident can be un-acknowledged" in refused.content.decode()

    _, key = create_api_key(name="ci", scopes=["incidents:read", "incidents:write"])
    client.logout()
    client.post(f"/api/v1/incidents/{incident.pk}/acknowledge/", headers={"Authorization": f"Bearer {key}"})
    api = client.post(f"/api/v1/incidents/{incident.pk}/unacknowledge/", headers={"Authorization": f"Bearer {key}"})
    assert api.status_code == 200 and api.json()["status"] == "triggered"
