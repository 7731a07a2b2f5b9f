"""The WSGI application gunicorn serves: senders' endpoints on a short middleware
stack, everything else on the portal's."""

import io
import json
from wsgiref.util import setup_testing_defaults

import pytest
from django.urls import URLPattern, reverse

from apps.incidents.models import Alert
from apps.integrations import urls as integration_urls
from incident_manager.urls import urlpatterns
from incident_manager.wsgi import application

from .conftest import load_fixture


def call(method, path, body=b""):
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json"}
    setup_testing_defaults(environ)
    answer = {}
    chunks = application(environ, lambda status, headers, *_: answer.update(status=status, headers=dict(headers)))
    return int(answer["status"].split()[0]), answer["headers"], b"".join(chunks)


def routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p.name
        else:
            yield from routes(p.url_patterns, prefix + str(p.pattern))


def test_every_sender_endpoint_and_no_other_is_under_the_sender_prefixes():
    senders = {name for _, name in routes(integration_urls.sender_urlpatterns)}
    assert {"ingest", "ingest-bearer", "heartbeat", "pagerduty-enqueue", "opsgenie-create", "opsgenie-action"} <= senders
    for route, name in routes(urlpatterns):
        under = ("/" + route.lstrip("^")).startswith(integration_urls.SENDER_PATH_PREFIXES)
        assert under == (name in senders), route


@pytest.mark.django_db(transaction=True)
def test_a_sender_is_served_without_the_portals_middleware_and_the_portal_with_it(ingest_path):
    status, headers, body = call("POST", ingest_path("alertmanager"),
                                 json.dumps(load_fixture("alertmanager_webhook_v4_firing.json")).encode())
    assert status == 202, body
    assert [a["action"] for a in json.loads(body)["alerts"]] == ["created", "created"]
    assert Alert.objects.count() == 2
    assert "Vary" not in headers and "X-Frame-Options" not in headers  # no session, no clickjacking guard
    assert headers["X-Content-Type-Options"] == "nosniff"  # SecurityMiddleware still applies
    assert call("GET", "/api/v1/ingest/no/such/route")[0] == 404
    assert call("GET", ingest_path("alertmanager"))[0] == 405

    status, headers, _ = call("GET", reverse("portal:incident-list"))
    assert status == 302 and "/accounts/login/" in headers["Location"]  # sessions and users
    assert headers["X-Frame-Options"] == "DENY"
