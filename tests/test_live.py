"""Live updates over the real Channels layer (Redis): a websocket client of the ASGI app
hears about changes made elsewhere, here by a task in a real Celery worker."""

from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from apps.audit.services import SYSTEM
from apps.incidents import services, tasks
from apps.incidents.models import Incident
from incident_manager.asgi import application

from .factories import IncidentFactory, ServiceFactory

# The worker and the consumer read what the test wrote: it must be committed.
pytestmark = pytest.mark.django_db(transaction=True)


def socket(path, user=None, origin="http://127.0.0.1"):
    """A websocket client as a browser tab would be: the page's origin, the session cookie."""
    headers = [(b"origin", origin.encode())]
    if user is not None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME].value
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode()))
    return WebsocketCommunicator(application, path, headers=headers)


@async_to_sync
async def try_connect(communicator):
    connected, code = await communicator.connect()
    await communicator.disconnect()
    return connected, code


def test_anonymous_or_foreign_origin_is_refused(responder):
    assert try_connect(socket("/ws/incidents/")) == (False, 4401)
    assert try_connect(socket("/ws/incidents/", responder, origin="http://evil.example"))[0] is False
    assert try_connect(socket("/ws/incidents/", responder))[0] is True


def test_a_celery_task_resolving_an_incident_reaches_the_sockets(celery_worker, responder, service):
    service.auto_resolve_minutes = 5
    service.save()
    stale = IncidentFactory(service=service, last_alert_at=timezone.now() - timedelta(minutes=10))
    fresh = IncidentFactory(service=service)
    every, this_one, another = (
        socket("/ws/incidents/", responder),
        socket(f"/ws/incidents/{stale.pk}/", responder),
        socket(f"/ws/incidents/{fresh.pk}/", responder),
    )

    @async_to_sync
    async def run_task_and_listen():
        for communicator in (every, this_one, another):
            assert (await communicator.connect())[0]
        try:
            # .delay() only queues the task: the worker thread resolves the incident and
            # publishes through Redis, as a separate worker process would.
            await sync_to_async(tasks.auto_resolve_stale.delay)()
            heard = [await every.receive_json_from(timeout=15), await this_one.receive_json_from(timeout=15)]
            return heard, await another.receive_nothing(timeout=0.5)
        finally:
            for communicator in (every, this_one, another):
                await communicator.disconnect()

    heard, another_heard_nothing = run_task_and_listen()

    assert heard == [{"event": "incident.changed", "id": stale.pk, "created": False}] * 2
    assert another_heard_nothing
    stale.refresh_from_db()
    assert stale.status == Incident.Status.RESOLVED and stale.resolved_by is None
    assert Incident.objects.get(pk=fresh.pk).status == Incident.Status.TRIGGERED


def test_another_teams_changes_never_reach_a_page(responder, service):
    """Lists hear their viewer's teams only; another team's incident page cannot be opened."""
    theirs = IncidentFactory(service=ServiceFactory())  # another team's
    ours = IncidentFactory(service=service)
    admin = get_user_model().objects.create_superuser(username="org-admin")
    mine, everything = socket("/ws/incidents/", responder), socket("/ws/incidents/", admin)
    assert try_connect(socket(f"/ws/incidents/{theirs.pk}/", responder)) == (False, 4403)

    @async_to_sync
    async def change_both_and_listen():
        for communicator in (mine, everything):
            assert (await communicator.connect())[0]
        try:
            for incident in (theirs, ours):
                await sync_to_async(services.add_note)(incident.pk, text="checking", actor=SYSTEM)
            return ([await mine.receive_json_from(timeout=10), await mine.receive_nothing(timeout=0.5)],
                    [await everything.receive_json_from(timeout=10), await everything.receive_json_from(timeout=10)])
        finally:
            for communicator in (mine, everything):
                await communicator.disconnect()

    mine_heard, everything_heard = change_both_and_listen()
    assert mine_heard == [{"event": "incident.changed", "id": ours.pk, "created": False}, True]
    assert [m["id"] for m in everything_heard] == [theirs.pk, ours.pk]
