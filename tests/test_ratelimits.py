"""Rate limits (incident_manager/ratelimit.py) as callers meet them: the API's 429, a
sender's 503 that it retries, refused guesses that cost no query, sign-in pages, and
neither a storm nor a Redis outage refused."""

import io
import json
import secrets
import time
from urllib.error import HTTPError
from urllib.parse import urlsplit
from urllib.request import Request, urlopen
from wsgiref.util import setup_testing_defaults

import pytest
import redis
from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured

from apps.accounts.models import ApiKey
from apps.accounts.services import create_api_key
from apps.incidents.models import Alert
from apps.audit.services import SYSTEM
from apps.integrations.services import create_integration, ingestion_url
from apps.schedules.models import Schedule
from apps.schedules.services import new_schedule_feed
from incident_manager import ratelimit
from incident_manager.wsgi import application

from .conftest import load_fixture, process_env
from .factories import UserFactory
from .test_outages import Blackhole, serve

pytestmark = pytest.mark.django_db

INCIDENTS = "/api/v1/incidents/"
READ = ApiKey.Scope.INCIDENTS_READ


def flush_buckets():
    client = redis.Redis.from_url(django_settings.REDIS_URL)
    keys = list(client.scan_iter(f"{django_settings.CACHES['default']['KEY_PREFIX']}:ratelimit:*"))
    if keys:
        client.delete(*keys)
    ratelimit.forget()


@pytest.fixture(autouse=True)
def fresh_buckets():
    """Every test starts with full buckets, and leaves them full for the tests after."""
    flush_buckets()
    yield
    flush_buckets()


def bearer(name="bot") -> dict:
    _, key = create_api_key(name=name, scopes=[READ])
    return {"Authorization": f"Bearer {key}"}


def am_body() -> str:
    return json.dumps(load_fixture("alertmanager_webhook_v4_firing.json"))


def wsgi(method, path, body=b"", headers=None, remote_addr="127.0.0.1"):
    """A request through incident_manager.wsgi.application, which serves senders on
    SENDER_MIDDLEWARE, as gunicorn would."""
    environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
               "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": "application/json", "REMOTE_ADDR": remote_addr}
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    setup_testing_defaults(environ)
    answer = {}
    chunks = application(environ, lambda status, headers, *_: answer.update(status=status, headers=dict(headers)))
    return int(answer["status"].split()[0]), answer["headers"], b"".join(chunks)


# --- The API ---------------------------------------------------------------------------


def test_an_api_key_over_its_limit_gets_429_with_retry_after_naming_the_limit(client, settings):
    settings.RATELIMIT_API_KEY = "3/m"
    key, other = bearer("busy"), bearer("quiet")
    for _ in range(3):
        assert client.get(INCIDENTS, headers=key).status_code == 200
    refused = client.get(INCIDENTS, headers=key)
    assert refused.status_code == 429
    assert 1 <= int(refused["Retry-After"]) <= 20  # one token back in 60/3 s
    assert refused["Content-Type"] == "application/json"
    assert "RATELIMIT_API_KEY (3/m)" in refused.json()["error"]
    assert "API key" in refused.json()["error"]
    # Another key has a bucket of its own.
    assert client.get(INCIDENTS, headers=other).status_code == 200


def test_a_portal_session_on_the_api_is_limited_per_user(client, settings):
    settings.RATELIMIT_API_KEY = "2/m"
    client.force_login(UserFactory(username="poller"))
    assert [client.get(INCIDENTS).status_code for _ in range(3)] == [200, 200, 429]


def test_unknown_api_keys_from_one_address_get_429_and_then_cost_no_query(client, settings, django_assert_num_queries):
    settings.RATELIMIT_UNKNOWN_TOKEN = "3/m"
    guesser = "203.0.113.7"
    for _ in range(3):
        wrong = {"Authorization": f"Bearer imk_{secrets.token_urlsafe(32)}"}
        assert client.get(INCIDENTS, headers=wrong, REMOTE_ADDR=guesser).status_code == 401
    wrong = {"Authorization": f"Bearer imk_{secrets.token_urlsafe(32)}"}
    with django_assert_num_queries(0):
        refused = client.get(INCIDENTS, headers=wrong, REMOTE_ADDR=guesser)
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "RATELIMIT_UNKNOWN_TOKEN" in refused.json()["error"]
    # Another address is not refused, nor a real key from there.
    assert client.get(INCIDENTS, headers=wrong, REMOTE_ADDR="198.51.100.9").status_code == 401
    assert client.get(INCIDENTS, headers=bearer(), REMOTE_ADDR="198.51.100.9").status_code == 200


# --- Senders ----------------------------------------------------------------------------


@pytest.fixture
def senders(service):
    """name -> a function sending one accepted request of that sender through the WSGI
    application (the senders' middleware stack)."""
    am = urlsplit(ingestion_url(create_integration(name="am", kind="alertmanager", service=service)[1], "alertmanager")).path
    _, grafana = create_integration(name="grafana", kind="grafana", service=service)
    _, routing_key = create_integration(name="pd", kind="pagerduty", service=service)
    _, genie_key = create_integration(name="og", kind="opsgenie", service=service)
    _, heartbeat = create_integration(name="hb", kind="heartbeat", service=service, heartbeat_minutes=5)
    pd_body = json.dumps({**load_fixture("pagerduty_events_v2_trigger.json"), "routing_key": routing_key}).encode()
    og_body = json.dumps(load_fixture("opsgenie_create_alert.json")).encode()
    grafana_body = json.dumps(load_fixture("grafana_webhook_firing.json")).encode()
    return {
        "alertmanager": lambda: wsgi("POST", am, am_body().encode()),
        "grafana, Bearer header": lambda: wsgi("POST", "/api/v1/ingest/grafana", grafana_body,
                                               {"Authorization": f"Bearer {grafana}"}),
        "pagerduty": lambda: wsgi("POST", "/v2/enqueue", pd_body),
        "opsgenie": lambda: wsgi("POST", "/opsgenie/v2/alerts", og_body, {"Authorization": f"GenieKey {genie_key}"}),
        "heartbeat": lambda: wsgi("GET", f"/api/v1/heartbeat/{heartbeat}"),
    }


@pytest.mark.django_db(transaction=True)  # the WSGI handler closes the connection after a request
@pytest.mark.parametrize("sender", ["alertmanager", "grafana, Bearer header", "pagerduty", "opsgenie", "heartbeat"])
def test_a_sender_over_its_limit_gets_a_503_with_retry_after_in_json(senders, sender, settings):
    settings.RATELIMIT_INTEGRATION = "2/m"
    send = senders[sender]
    accepted = [send() for _ in range(2)]
    assert [status for status, _, _ in accepted] == [202, 202] if sender != "heartbeat" else [200, 200]
    status, headers, body = send()
    assert status == 503  # not a 4xx, which Alertmanager drops for good
    assert 1 <= int(headers["Retry-After"]) <= 30
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert "RATELIMIT_INTEGRATION (2/m)" in error and "integration token" in error
    # The other integrations' buckets are their own.
    others = [name for name in senders if name != sender]
    assert senders[others[0]]()[0] in (200, 202)


def test_alerts_accepted_before_the_limit_are_stored_and_none_after(ingest_path, client, settings):
    settings.RATELIMIT_INTEGRATION = "3/m"
    path = ingest_path("alertmanager")
    answers = [client.post(path, am_body(), content_type="application/json") for _ in range(5)]
    assert [a.status_code for a in answers] == [202, 202, 202, 503, 503]
    stored = {a["alert"] for answer in answers[:3] for a in answer.json()["alerts"]}
    assert stored and set(Alert.objects.values_list("id", flat=True)) == stored


def test_a_sender_is_let_through_again_once_its_retry_after_has_passed(ingest_path, client, settings):
    settings.RATELIMIT_INTEGRATION = "2/4s"  # one token back every 2 s
    path = ingest_path("alertmanager")
    assert [client.post(path, am_body(), content_type="application/json").status_code for _ in range(2)] == [202, 202]
    refused = client.post(path, am_body(), content_type="application/json")
    assert refused.status_code == 503 and refused["Retry-After"] in ("1", "2")
    time.sleep(int(refused["Retry-After"]) + 0.05)
    assert client.post(path, am_body(), content_type="application/json").status_code == 202


@pytest.mark.django_db(transaction=True)
def test_unknown_tokens_from_one_address_are_refused_without_a_query_and_others_are_not(
    service, settings, django_assert_num_queries
):
    settings.RATELIMIT_UNKNOWN_TOKEN = "3/m"
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    real = urlsplit(ingestion_url(token, "alertmanager")).path
    guesser, neighbour = "203.0.113.7", "198.51.100.9"
    assert wsgi("POST", real, am_body().encode(), remote_addr=guesser)[0] == 202  # the guesser's real sender
    for _ in range(3):
        status, _, _ = wsgi("POST", f"/api/v1/ingest/{secrets.token_urlsafe(32)}/alertmanager", b"{}", remote_addr=guesser)
        assert status == 404
    with django_assert_num_queries(0):
        status, headers, body = wsgi("POST", f"/api/v1/ingest/{secrets.token_urlsafe(32)}/alertmanager", b"{}",
                                     remote_addr=guesser)
        assert status == 503 and int(headers["Retry-After"]) >= 1
        assert "RATELIMIT_UNKNOWN_TOKEN (3/m)" in json.loads(body)["error"]
        # Every sender endpoint shares the address's bucket.
        for path, auth in [("/api/v1/heartbeat/" + secrets.token_urlsafe(32), {}),
                           ("/opsgenie/v2/alerts", {"Authorization": f"GenieKey {secrets.token_urlsafe(32)}"})]:
            assert wsgi("POST", path, b"{}", auth, remote_addr=guesser)[0] == 503
    # A real token this process knows is still served from the guesser's address...
    assert wsgi("POST", real, am_body().encode(), remote_addr=guesser)[0] == 202
    # ... and other addresses get their 404 for an unknown token.
    assert wsgi("POST", f"/api/v1/ingest/{secrets.token_urlsafe(32)}/alertmanager", b"{}", remote_addr=neighbour)[0] == 404


@pytest.mark.django_db(transaction=True)
def test_x_forwarded_for_is_ignored_unless_a_proxy_is_trusted(settings):
    settings.RATELIMIT_UNKNOWN_TOKEN = "1/m"

    def guess(remote, forwarded):
        path = f"/api/v1/heartbeat/{secrets.token_urlsafe(32)}"
        return wsgi("GET", path, headers={"X-Forwarded-For": forwarded}, remote_addr=remote)[0]

    # No proxy trusted: a client writing a new X-Forwarded-For each time gains nothing.
    assert [guess("203.0.113.7", f"10.0.0.{i}") for i in range(3)] == [404, 503, 503]
    # Behind one proxy (nginx appends its peer): that last address is the client, whatever it wrote before.
    settings.RATELIMIT_TRUSTED_PROXIES = 1
    assert [guess("127.0.0.1", f"10.0.0.{i}, 192.0.2.1") for i in range(3)] == [404, 503, 503]
    assert guess("127.0.0.1", "192.0.2.2") == 404


# --- Sign-in pages ------------------------------------------------------------------------


@pytest.fixture
def rita(settings):
    """A user who may sign in to both pages; passwords hashed cheaply (each wrong guess
    hashes too), so that the tests measure the limits, not PBKDF2."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return UserFactory(username="rita", is_staff=True)


@pytest.mark.parametrize("path, field", [("/accounts/login/", "login"), ("/admin/login/", "username")])
def test_sign_in_posts_are_limited_per_address_with_a_429_page(client, settings, path, field, rita):
    settings.RATELIMIT_LOGIN_IP = "3/m"
    for i in range(3):
        answer = client.post(path, {field: f"user{i}", "password": "wrong"}, REMOTE_ADDR="203.0.113.7")
        assert answer.status_code == 200  # the form again, with its error
    refused = client.post(path, {field: "rita", "password": "correct horse battery staple"}, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert "Too many sign-in attempts" in refused.content.decode()
    assert client.get(path, REMOTE_ADDR="203.0.113.7").status_code == 200  # the page itself is not limited
    # Another address signs in.
    assert client.post(path, {field: "rita", "password": "correct horse battery staple"},
                       REMOTE_ADDR="198.51.100.9").status_code == 302


def test_sign_in_posts_are_limited_per_username_across_addresses(client, settings, rita):
    settings.RATELIMIT_LOGIN_USERNAME = "2/m"
    answers = [client.post("/accounts/login/", {"login": "Rita", "password": "wrong"}, REMOTE_ADDR=f"203.0.113.{i}")
               for i in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert client.post("/accounts/login/", {"login": "someone", "password": "wrong"},
                       REMOTE_ADDR="203.0.113.9").status_code == 200


# --- Defaults, configuration, Redis away ---------------------------------------------------------


def test_the_default_limits_refuse_no_burst_of_500_requests(ingest_path, client):
    path = ingest_path("alertmanager")
    body = am_body()
    assert {client.post(path, body, content_type="application/json").status_code for _ in range(500)} == {202}
    key = bearer()
    assert {client.get(INCIDENTS + "?status=resolved", headers=key).status_code for _ in range(500)} == {200}


def test_a_malformed_limit_is_refused_with_its_setting_named():
    with pytest.raises(ImproperlyConfigured, match="RATELIMIT_INTEGRATION"):
        ratelimit.parse("RATELIMIT_INTEGRATION", "lots")
    assert ratelimit.parse("RATELIMIT_INTEGRATION", "off") is None
    assert ratelimit.parse("X", "10/10m").per_ms == pytest.approx(10 / 600_000)


def test_limits_off_refuse_nothing(ingest_path, client, settings):
    settings.RATELIMIT_INTEGRATION = "1/m"
    settings.RATELIMIT_ENABLED = False
    path = ingest_path("alertmanager")
    assert {client.post(path, am_body(), content_type="application/json").status_code for _ in range(3)} == {202}


def call(method, url, body=None, headers=None):
    data = body.encode() if isinstance(body, str) else body
    request = Request(url, data=data, method=method, headers={"Content-Type": "application/json", **(headers or {})})
    started = time.monotonic()
    try:
        with urlopen(request, timeout=30) as answer:
            return answer.status, time.monotonic() - started, json.loads(answer.read())
    except HTTPError as error:
        return error.code, time.monotonic() - started, json.loads(error.read())


@pytest.mark.django_db(transaction=True)
def test_with_redis_silent_nothing_is_refused_and_answers_stay_fast(service):
    """gunicorn as deployed, its Redis a blackhole, every limit 1/m: the limiter lets all
    through (fail open), and waits out Redis's timeout once, not per request."""
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    _, key = create_api_key(name="bot", scopes=[READ])
    silent = Blackhole()
    limits = {name: "1/m" for name in ratelimit.LIMITS}
    web, base = serve(process_env(REDIS_URL=f"redis://127.0.0.1:{silent.port}/0", **limits))
    try:
        path = urlsplit(ingestion_url(token, "alertmanager")).path
        status, took, first = call("POST", base + path, am_body())
        assert status == 202 and took < 2, (status, took)
        answers = [call("POST", base + path, am_body()) for _ in range(3)]
        answers += [call("GET", base + INCIDENTS, headers={"Authorization": f"Bearer {key}"}) for _ in range(3)]
        answers += [call("GET", base + f"/api/v1/heartbeat/{secrets.token_urlsafe(32)}") for _ in range(3)]
        assert [status for status, _, _ in answers] == [202] * 3 + [200] * 3 + [404] * 3
        assert max(took for _, took, _ in answers) < 1, answers
    finally:
        web.terminate()
        web.wait(10)
        silent.close()
    answered = {a["alert"] for body in [first] + [body for _, _, body in answers[:3]] for a in body["alerts"]}
    assert set(Alert.objects.values_list("id", flat=True)) == answered


@pytest.mark.django_db(transaction=True)
def test_gunicorn_refuses_a_sender_over_its_limit_with_a_503(service):
    """The deployed process: the senders' stack answers a RateLimited as a 503."""
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    web, base = serve(process_env(RATELIMIT_INTEGRATION="2/m"))
    try:
        path = urlsplit(ingestion_url(token, "alertmanager")).path
        answers = [call("POST", base + path, am_body()) for _ in range(3)]
        assert [status for status, _, _ in answers] == [202, 202, 503]
        assert "RATELIMIT_INTEGRATION (2/m)" in answers[2][2]["error"]
    finally:
        web.terminate()
        web.wait(10)


def test_calendar_feed_secrets_cannot_be_guessed_fast(client, service, settings, django_assert_num_queries):
    """A feed's secret is its only credential: an address presenting unknown ones is refused (429)."""
    settings.RATELIMIT_UNKNOWN_TOKEN = "2/m"
    schedule = Schedule.objects.create(name="primary", team=service.team)
    url = f"/ical/schedule/{new_schedule_feed(schedule, actor=SYSTEM)}.ics"
    for _ in range(2):
        assert client.get(f"/ical/schedule/{secrets.token_urlsafe(24)}.ics", REMOTE_ADDR="203.0.113.7").status_code == 404
    with django_assert_num_queries(0):
        refused = client.get(f"/ical/user/{secrets.token_urlsafe(24)}.ics", REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429 and int(refused["Retry-After"]) >= 1
    assert client.get(url, REMOTE_ADDR="198.51.100.9").status_code == 200
