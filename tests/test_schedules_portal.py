"""Portal pages, admin preview, iCal feeds and the "who will be paged, when" dry run."""

import re
from datetime import timedelta

import pytest
import time_machine
from django.contrib.auth import get_user_model
from icalendar import Calendar

from apps.audit.services import Actor
from apps.escalation import engine, selectors
from apps.incidents import services
from apps.schedules.models import CalendarFeed

from .factories import MembershipFactory
from .test_escalation import MONDAY, open_incident, world  # noqa: F401  (world is a fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def viewer(client, world):
    MembershipFactory(team=world["team"], user=world["frank"], role="viewer")
    client.force_login(world["frank"])
    return client


def test_dry_run_of_an_incident_follows_policy_and_schedules(world):
    with time_machine.travel(MONDAY, tick=False) as clock:
        incident = open_incident(world, "critical")
        planned = selectors.dry_run(incident)
        assert [(s.at, s.level, [u.username for u, _ in s.targets]) for s in planned] == [
            (MONDAY, 0, ["alice"]),
            (MONDAY + timedelta(minutes=3), 1, ["bob"]),
            (MONDAY + timedelta(minutes=6), 2, ["carol", "dave"]),
        ]
        assert planned[0].channels == ["voice", "slack", "email"]
        engine.tick()
        assert [s.level for s in selectors.dry_run(incident)] == [1, 2]
        services.acknowledge(incident, actor=Actor.of(world["alice"]))
        assert selectors.dry_run(incident) == []


def test_dry_run_of_a_service_shows_each_variant_and_business_hours(world):
    saturday = MONDAY - timedelta(days=2)
    plans = {p.name: steps for p, steps in selectors.dry_run(world["service"], saturday).items()}
    assert set(plans) == {"critical pages", "high pages", "medium pages", "low pages"}
    medium = plans["medium pages"][0]
    assert medium.deferred and medium.at == MONDAY.replace(hour=9)
    assert [s.digest for s in plans["low pages"]] == [True]


def test_on_call_now_schedule_and_service_pages(viewer, world):
    with time_machine.travel(MONDAY, tick=False):
        page = viewer.get("/oncall/").content.decode()
        assert "alice" in page and "Primary" in page and "Make a new calendar link" in page
        page = viewer.get(f"/schedules/{world['schedule'].pk}/").content.decode()
        assert page.count("<tr>") >= 3 and "alice" in page and "erin" in page
        page = viewer.get(f"/oncall/services/{world['service'].pk}/").content.decode()
        assert "critical pages" in page and "bob" in page


def test_incident_page_shows_the_plan_and_the_escalation_timeline(viewer, world):
    with time_machine.travel(MONDAY, tick=False):
        incident = open_incident(world, "critical")
        engine.tick()
        page = viewer.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Who will be paged, when" in page
    assert "paged (level 1" in page and "on call on Primary" in page


def test_pages_need_sign_in(client, world):
    assert client.get("/oncall/").status_code == 302


def shown_feed_url(page: bytes) -> str:
    """The path of the calendar link a page shows once."""
    return re.search(r"<code>http://testserver(/ical/[^<]+)</code>", page.decode()).group(1)


def test_ical_feeds_behind_secret_tokens_shown_once_and_stored_hashed(client, world):
    admin = world["alice"]
    MembershipFactory(team=world["team"], user=admin, role="admin")
    client.force_login(admin)
    with time_machine.travel(MONDAY, tick=False):
        assert b"/ical/" not in client.get(f"/schedules/{world['schedule'].pk}/").content  # none yet, none shown
        url = shown_feed_url(client.post(f"/schedules/{world['schedule'].pk}/").content)
        response = client.get(url)
        assert response.status_code == 200 and response["Content-Type"].startswith("text/calendar")
        events = Calendar.from_ical(response.content).walk("VEVENT")
        assert {str(e["summary"]) for e in events} == {"On call: Primary (alice)", "On call: Primary (erin)"}
        assert client.get("/ical/schedule/nope.ics").status_code == 404
        token = url.removeprefix("/ical/schedule/").removesuffix(".ics")
        world["schedule"].refresh_from_db()
        assert token not in world["schedule"].feed_token_hash and len(world["schedule"].feed_token_hash) == 64
        assert b"/ical/" not in client.get(f"/schedules/{world['schedule'].pk}/").content  # never shown again
        renewed = shown_feed_url(client.post(f"/schedules/{world['schedule'].pk}/").content)
        assert client.get(url).status_code == 404 and client.get(renewed).status_code == 200

        MembershipFactory(team=world["team"], user=world["erin"], role="responder")
        client.force_login(world["erin"])
        assert client.post(f"/schedules/{world['schedule'].pk}/").status_code == 403  # only the team's admins
        url = shown_feed_url(client.post("/oncall/").content)
        events = Calendar.from_ical(client.get(url).content).walk("VEVENT")
        assert events and all("(erin)" in str(e["summary"]) for e in events)
        starts = sorted(e.decoded("dtstart") for e in events)
        assert len(starts) >= 4  # the first one is clipped to the feed window
        assert all(b - a == timedelta(weeks=2) for a, b in zip(starts[1:], starts[2:]))
        assert url.removeprefix("/ical/user/").removesuffix(".ics") not in CalendarFeed.objects.get(user=world["erin"]).token_hash


def test_admin_schedule_page_previews_14_days(client, world):
    admin = get_user_model().objects.create(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    with time_machine.travel(MONDAY, tick=False):
        page = client.get(f"/admin/schedules/schedule/{world['schedule'].pk}/change/").content.decode()
    assert "Next 14 days" in page and "Mon 2025-06-02 10:00" in page and "erin" in page
    assert client.get(f"/admin/escalation/escalationpolicy/{world['policies']['critical'].pk}/change/").status_code == 200
    assert client.get("/admin/schedules/layer/add/").status_code == 200
