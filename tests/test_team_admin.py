"""Django admin for a team admin: their teams' configuration only, and no way to move
anything into another team; viewers and responders do not get in."""

import pytest
from django.contrib.auth import get_user_model

from apps.accounts.models import Membership
from apps.incidents.models import Service

from .factories import ServiceFactory, TeamFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def teams():
    ours, theirs = TeamFactory(name="Checkout team", slug="checkout"), TeamFactory(name="Relevance team", slug="relevance")
    return ours, theirs, ServiceFactory(team=ours, name="Shopping cart", slug="cart"), ServiceFactory(team=theirs, name="Search indexer", slug="indexer")


def signed_in(client, team, role):
    user = get_user_model().objects.create_user(username=f"{role}-of-{team.slug}", password="pw")
    Membership.objects.create(user=user, team=team, role=role)
    client.force_login(user)
    return user


def test_a_team_admin_manages_their_teams_services_only(client, teams):
    ours, theirs, cart, index = teams
    admin = signed_in(client, ours, "admin")
    admin.refresh_from_db()
    assert admin.is_staff  # the role lets them into Django admin

    listing = client.get("/admin/incidents/service/").content.decode()
    assert "Shopping cart" in listing and "Search indexer" not in listing
    assert client.get(f"/admin/incidents/service/{cart.pk}/change/").status_code == 200
    assert client.get(f"/admin/incidents/service/{index.pk}/change/").status_code == 302  # "doesn't exist"
    form = client.get("/admin/incidents/service/add/").context["adminform"].form
    assert list(form.fields["team"].queryset) == [ours]

    # Moving a service into another team is not a choice.
    response = client.post(f"/admin/incidents/service/{cart.pk}/change/", {
        "name": "Shopping cart", "slug": "cart", "team": theirs.pk, "similarity_threshold": "0.9",
        "grouping_rules-TOTAL_FORMS": "0", "grouping_rules-INITIAL_FORMS": "0",
    })
    assert response.status_code == 200 and "Select a valid choice" in response.content.decode()
    assert Service.objects.get(pk=cart.pk).team == ours
    assert client.post(f"/admin/incidents/service/{index.pk}/delete/", {"post": "yes"}).status_code == 302
    assert Service.objects.filter(pk=index.pk).exists()

    teams_page = client.get("/admin/accounts/team/").content.decode()
    assert "Checkout team" in teams_page and "Relevance team" not in teams_page


@pytest.mark.parametrize("role", ["viewer", "responder"])
def test_viewers_and_responders_do_not_get_into_admin(client, teams, role):
    user = signed_in(client, teams[0], role)
    user.refresh_from_db()
    assert not user.is_staff
    assert client.get("/admin/incidents/service/").status_code == 302


def test_losing_the_admin_role_closes_admin(client, teams):
    admin = signed_in(client, teams[0], "admin")
    Membership.objects.filter(user=admin).update(role="responder")  # a bulk update sends no signal...
    Membership.objects.get(user=admin).save()  # ...a save (admin, SSO sync) does
    admin.refresh_from_db()
    assert not admin.is_staff
    assert client.get("/admin/incidents/service/").status_code == 302
