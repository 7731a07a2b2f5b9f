"""The portal in a real browser: sign in, watch an incident arrive live, acknowledge it."""

from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from apps.incidents.models import Incident
from apps.integrations.services import create_integration, ingestion_url

from .conftest import load_fixture, serve_asgi
from .factories import MembershipFactory, UserFactory

pytestmark = pytest.mark.browser

TITLE = "CPU usage above 90% on web-01:9100"  # the first alert of the fixture


@pytest.fixture(autouse=True)
def orm_beside_playwright(monkeypatch):
    # Playwright's sync API keeps an asyncio loop running in this thread, and Django
    # then refuses ORM calls as "async-unsafe".  Ours are plain blocking calls made
    # between browser steps, so the guard does not apply.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_new_incident_appears_live_and_is_acknowledged(asgi_server, celery_worker, page, service):
    rita = MembershipFactory(team=service.team, user=UserFactory(username="rita")).user
    _, token = create_integration(name="alertmanager", kind="alertmanager", service=service)
    ingest_url = ingestion_url(token, "alertmanager")

    page.goto(asgi_server + "/accounts/login/")
    page.get_by_label("Username or email").fill("rita")
    page.get_by_label("Password").fill("correct horse battery staple")
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(asgi_server + "/incidents/")
    expect(page.get_by_text("No incidents to show.")).to_be_visible()
    # Subscribed before the alert is sent: a message before that would be missed.
    expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")
    page.evaluate("window.notReloaded = true")

    # Alertmanager calls the ingestion URL; the Celery worker then pushes the news.
    response = httpx.post(asgi_server + urlsplit(ingest_url).path, json=load_fixture("alertmanager_webhook_v4_firing.json"))
    assert response.status_code == 202, response.text

    row = page.locator("#incident-list tr", has_text=TITLE)
    expect(row).to_be_visible(timeout=15_000)
    expect(row).to_contain_text("triggered")
    assert page.evaluate("window.notReloaded") is True

    row.get_by_role("button", name="Acknowledge").click()
    expect(row).to_contain_text("acknowledged")
    expect(row).to_contain_text("by rita")
    assert page.evaluate("window.notReloaded") is True
    incident = Incident.objects.get(title=TITLE)
    assert (incident.status, incident.acknowledged_by) == (Incident.Status.ACKNOWLEDGED, rita)

    row.get_by_role("link", name=TITLE).click()
    detail = page.locator("#incident-detail")
    expect(detail).to_contain_text("rita acknowledged")
    page.get_by_label("Add a note to the timeline").fill("Load balancer drained web-01")
    page.get_by_role("button", name="Add note").click()
    expect(detail.locator(".timeline")).to_contain_text("Load balancer drained web-01")
    expect(page.get_by_label("Add a note to the timeline")).to_have_value("")

    # The incident's own page follows it too: the sender resolves it.
    page.evaluate("window.notReloaded = true")
    resolved = httpx.post(asgi_server + urlsplit(ingest_url).path, json=load_fixture("alertmanager_webhook_v4_resolved.json"))
    assert resolved.status_code == 202, resolved.text
    expect(detail).to_contain_text("resolved by the sender", timeout=15_000)
    expect(detail.locator(".badges")).to_contain_text("resolved")
    assert page.evaluate("window.notReloaded") is True


# Every Content-Security-Policy violation the page sees, kept where the test can read it
# (added before any of the page's own scripts run).
RECORD_VIOLATIONS = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.cspViolations.push(`${e.effectiveDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`);
});
"""


def test_portal_htmx_websockets_and_admin_work_under_the_content_security_policy(
    transactional_db, monkeypatch, settings, celery_worker, page, service
):
    """The key flow, with the websocket tier on a port of its own as under `make run`:
    the policy must let live.js reach it, and nothing on the way may break the policy."""
    rita = MembershipFactory(team=service.team, user=UserFactory(username="rita", is_staff=True, is_superuser=True)).user
    _, token = create_integration(name="alertmanager", kind="alertmanager", service=service)
    ingest_path = urlsplit(ingestion_url(token, "alertmanager")).path
    console = []
    page.on("console", lambda message: console.append(message.text))
    page.add_init_script(RECORD_VIOLATIONS)

    with serve_asgi(monkeypatch) as web_port, serve_asgi(monkeypatch) as ws_port:
        settings.WEBSOCKET_PORT = str(ws_port)
        site = f"http://127.0.0.1:{web_port}"

        page.goto(site + "/accounts/login/")
        page.get_by_label("Username or email").fill("rita")
        page.get_by_label("Password").fill("correct horse battery staple")
        page.get_by_role("button", name="Sign in").click()
        expect(page).to_have_url(site + "/incidents/")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")

        answer = page.request.get(site + "/incidents/")
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
        assert f"connect-src 'self' ws://127.0.0.1:{ws_port}" in policy

        response = httpx.post(site + ingest_path, json=load_fixture("alertmanager_webhook_v4_firing.json"))
        assert response.status_code == 202, response.text
        row = page.locator("#incident-list tr", has_text=TITLE)
        expect(row).to_be_visible(timeout=15_000)  # over the websocket, on the other port
        row.get_by_role("button", name="Acknowledge").click()  # htmx
        expect(row).to_contain_text("by rita")

        row.get_by_role("link", name=TITLE).click()
        detail = page.locator("#incident-detail")
        expect(page.locator("#live-status")).to_have_attribute("data-state", "connected")
        page.get_by_label("Add a note to the timeline").fill("Drained web-01")
        page.get_by_role("button", name="Add note").click()
        expect(detail.locator(".timeline")).to_contain_text("Drained web-01")
        # Emptied by static/js/portal.js now that no hx-on attribute may run code.
        expect(page.get_by_label("Add a note to the timeline")).to_have_value("")
        resolved = httpx.post(site + ingest_path, json=load_fixture("alertmanager_webhook_v4_resolved.json"))
        assert resolved.status_code == 202, resolved.text
        expect(detail).to_contain_text("resolved by the sender", timeout=15_000)
        assert page.evaluate("window.cspViolations") == []

        incident = Incident.objects.get(title=TITLE)
        for path in ("/admin/", "/admin/incidents/incident/", f"/admin/incidents/incident/{incident.pk}/change/",
                     "/admin/integrations/integration/add/"):
            admin_page = page.goto(site + path)
            assert admin_page.status == 200, path
            assert "content-security-policy" in admin_page.headers
            page.wait_for_load_state("load")
            assert page.evaluate("window.cspViolations") == [], path

        # The listener does hear a violation: an injected inline handler is refused.
        page.goto(site + "/incidents/")
        page.evaluate("""document.body.insertAdjacentHTML("beforeend", '<img src="data:," onload="window.ran = 1">')""")
        page.wait_for_function("window.cspViolations.length > 0")
        assert page.evaluate("window.ran") is None
        assert page.evaluate("window.cspViolations")[0].startswith("script-src-attr blocked inline")
    assert [text for text in console if "Content Security Policy" in text][1:] == []  # only the one provoked
