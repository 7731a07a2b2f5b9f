"""Delivery of Notification rows (the outbox) through the real e-mail, HTTP and SDK
code against local fakes: retries and their timing, final errors, the circuit
breaker with its fallback, and exactly-one send under concurrent delivery."""

import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.utils import timezone

from apps.audit.models import AuditEntry
from apps.notifications import breaker, outbox
from apps.notifications.channels import sms, webhook
from apps.notifications.models import ContactMethod, Notification, SlackMessage, WebhookEndpoint

from .factories import IncidentFactory, MembershipFactory, UserFactory
from .notify_fakes import _clean_breakers, fake_receiver, fake_slack, fake_smtp, fake_twilio  # noqa: F401
from .notify_helpers import channel_link, endpoint, notification

T0 = datetime(2027, 1, 1, 12, 0, tzinfo=UTC)  # after the rows are created: they are due


def reload(n: Notification) -> Notification:
    n.refresh_from_db()
    return n


# ----- e-mail --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_email_has_text_and_html_and_is_threaded_per_incident(fake_smtp, service):
    user = UserFactory(username="erin", email="erin@example.org")
    incident = IncidentFactory(service=service, severity="critical", title="Checkout 5xx")
    first = notification(incident, "email", recipient=user)
    second = notification(incident, "email", recipient=user)

    assert outbox.deliver(first.pk) == "delivered"
    assert outbox.deliver(second.pk) == "delivered"

    assert [m.rcpt_tos for m in fake_smtp.messages] == [["erin@example.org"], ["erin@example.org"]]
    mails = [fake_smtp.parsed(0), fake_smtp.parsed(1)]
    root = f"<incident-{incident.pk}@im.example.org>"
    assert {m["In-Reply-To"] for m in mails} == {root} and {m["References"] for m in mails} == {root}
    assert mails[0]["Message-ID"] != mails[1]["Message-ID"]
    assert mails[0]["Subject"] == f"[CRITICAL] #{incident.number} Checkout 5xx"
    parts = {p.get_content_type(): p.get_payload(decode=True).decode() for p in mails[0].walk() if not p.is_multipart()}
    assert f"#{incident.number} Checkout 5xx" in parts["text/plain"]
    assert "<h2" in parts["text/html"] and f"/incidents/{incident.pk}/" in parts["text/html"]
    first = reload(first)
    assert first.external_id == mails[0]["Message-ID"] and first.attempts == 1 and first.delivered_at
    assert AuditEntry.objects.filter(incident=incident, verb="notification.delivered").count() == 2


@pytest.mark.django_db
def test_smtp_temporary_refusal_is_retried_and_permanent_is_final(fake_smtp, service):
    user = UserFactory(username="erin", email="erin@example.org")
    incident = IncidentFactory(service=service)
    fake_smtp.refuse("451 4.3.0 try again later")
    n = notification(incident, "email", recipient=user)
    assert outbox.deliver(n.pk) == "retry"
    assert "451" in reload(n).last_error

    fake_smtp.refuse("550 5.1.1 no such user")
    other = notification(incident, "email", recipient=user)
    assert outbox.deliver(other.pk) == "failed"
    other = reload(other)
    assert other.status == "failed" and other.attempts == 1 and "550" in other.last_error


# ----- webhooks, retries ---------------------------------------------------------------------


@pytest.mark.django_db
def test_webhook_is_signed_standard_webhooks_style(fake_receiver, service):
    hook = endpoint(service, fake_receiver.url + "/hook")
    incident = IncidentFactory(service=service, title="Disk full")
    n = notification(incident, "webhook", target=f"webhook:{hook.pk}")

    assert outbox.deliver(n.pk) == "delivered"

    [request] = fake_receiver.calls("hook")
    headers = {k.lower(): v for k, v in request.headers.items()}
    assert headers["webhook-id"] == n.idempotency_key
    assert webhook.verify(hook.secret, headers, request.body)
    assert not webhook.verify(hook.secret, headers, request.body.replace(b"Disk", b"Dusk"))
    assert request.data["data"]["incident"]["number"] == incident.number


@pytest.mark.django_db
def test_retries_back_off_1_2_4_8_16_seconds_then_give_up(fake_receiver, service, settings):
    settings.NOTIFY_BREAKER_THRESHOLD = 100  # this test is about the retry timing alone
    hook = endpoint(service, fake_receiver.url + "/hook")
    fake_receiver.fail("hook", 503, times=10)
    n = notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}", next_attempt_at=T0)

    at = T0
    with time_machine.travel(at, tick=False) as clock:
        for attempt, delay in enumerate([1, 2, 4, 8, 16], start=1):
            assert outbox.deliver(n.pk) == "retry"
            n = reload(n)
            assert (n.attempts, n.status) == (attempt, "pending")
            assert n.next_attempt_at == at + timedelta(seconds=delay)
            clock.move_to(at + timedelta(seconds=delay) - timedelta(milliseconds=1))
            assert outbox.deliver(n.pk) == "skipped"  # not yet due
            at = at + timedelta(seconds=delay)
            clock.move_to(at)
        assert outbox.deliver(n.pk) == "failed"
    n = reload(n)
    assert n.status == "failed" and n.attempts == 6 and "gave up after 6 attempts" in n.last_error
    assert "HTTP 503" in n.last_error and n.next_attempt_at is None
    assert len(fake_receiver.calls("hook")) == 6
    assert AuditEntry.objects.filter(verb="notification.failed", data__notification=n.pk).exists()


@pytest.mark.django_db
def test_429_honours_retry_after_and_other_4xx_is_final(fake_receiver, service):
    hook = endpoint(service, fake_receiver.url + "/hook")
    incident = IncidentFactory(service=service)
    fake_receiver.fail("hook", 429, headers={"Retry-After": "7"})
    fake_receiver.fail("hook", 410)
    limited = notification(incident, "webhook", target=f"webhook:{hook.pk}")
    gone = notification(incident, "webhook", target=f"webhook:{hook.pk}")

    with time_machine.travel(T0, tick=False):
        assert outbox.deliver(limited.pk) == "retry"
        assert reload(limited).next_attempt_at == T0 + timedelta(seconds=7)
        assert outbox.deliver(gone.pk) == "failed"
    gone = reload(gone)
    assert gone.status == "failed" and gone.attempts == 1 and gone.last_error.startswith("HTTP 410")


@pytest.mark.django_db
def test_a_delivered_row_is_never_sent_again(fake_receiver, service):
    hook = endpoint(service, fake_receiver.url + "/hook")
    n = notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}")
    assert outbox.deliver(n.pk) == "delivered"
    assert outbox.deliver(n.pk) == "skipped"
    assert len(fake_receiver.calls("hook")) == 1


@pytest.mark.django_db
def test_a_page_for_an_incident_already_acknowledged_is_suppressed(fake_smtp, service):
    user = UserFactory(username="erin", email="erin@example.org")
    incident = IncidentFactory(service=service, status="acknowledged")
    n = notification(incident, "email", recipient=user)
    assert outbox.deliver(n.pk) == "suppressed"
    assert reload(n).status == "suppressed" and fake_smtp.messages == []


# ----- the circuit breaker -------------------------------------------------------------------


@pytest.mark.django_db
def test_breaker_opens_falls_back_to_email_and_closes_again(fake_slack, fake_smtp, service):
    MembershipFactory(team=service.team, user=UserFactory(username="oncall", email="oncall@example.org"))
    link = channel_link(service)
    circuit = f"slack:{link.workspace.team_id}"
    fake_slack.fail("chat.postMessage", 500, times=5)
    incidents = [IncidentFactory(service=service) for _ in range(6)]
    rows = [notification(i, "slack", target=f"slack-channel:{link.pk}") for i in incidents]

    with time_machine.travel(T0, tick=False) as clock:
        # Five consecutive failures (each its own row) open the circuit…
        assert [outbox.deliver(n.pk) for n in rows[:5]] == ["retry"] * 5
        assert breaker.state(circuit) == breaker.OPEN
        # …and while it is open the sixth message goes out by e-mail to the team instead.
        assert outbox.deliver(rows[5].pk) == "fallback"
        original = reload(rows[5])
        assert original.status == "failed" and "circuit open: fell back to email" in original.last_error
        [fallback] = original.fallbacks.all()
        assert fallback.channel == "email" and fallback.target == f"team:{service.team_id}"
        assert outbox.deliver(fallback.pk) == "delivered"
        assert fake_smtp.messages[0].rcpt_tos == ["oncall@example.org"]
        assert len(fake_slack.calls("chat.postMessage")) == 5  # nothing more was tried on Slack
        entry = AuditEntry.objects.get(incident=incidents[5], verb="notification.fallback")
        assert entry.data["fallback_to"] == "email"

        # Retries due while it is open are not sent on Slack either (nor counted as attempts).
        clock.move_to(T0 + timedelta(seconds=30))
        assert outbox.deliver(rows[0].pk) == "fallback"  # a channel message: to e-mail as well

        # After 60 s one trial goes through; Slack is healthy again, so the circuit closes.
        clock.move_to(T0 + timedelta(seconds=61))
        assert breaker.state(circuit) == breaker.HALF_OPEN
        assert outbox.deliver(rows[1].pk) == "delivered"
        assert breaker.state(circuit) == breaker.CLOSED
    assert reload(rows[1]).attempts == 2


@pytest.mark.django_db
def test_a_failed_trial_opens_the_circuit_again(fake_receiver, service):
    hook = endpoint(service, fake_receiver.url + "/hook")
    circuit = f"webhook:{hook.pk}"
    fake_receiver.fail("hook", 502, times=6)
    rows = [notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}") for _ in range(6)]
    with time_machine.travel(T0, tick=False) as clock:
        for n in rows[:5]:
            outbox.deliver(n.pk)
        # webhook is last in the fallback chain: the row waits for the circuit instead.
        assert outbox.deliver(rows[5].pk) == "deferred"
        assert reload(rows[5]).next_attempt_at == T0 + timedelta(seconds=60)
        clock.move_to(T0 + timedelta(seconds=60))
        assert outbox.deliver(rows[5].pk) == "retry"  # the trial, and it failed
        assert breaker.state(circuit) == breaker.OPEN
    assert len(fake_receiver.calls("hook")) == 6


@pytest.mark.django_db
def test_half_open_lets_exactly_one_trial_through(settings):
    with time_machine.travel(T0, tick=False) as clock:
        for _ in range(settings.NOTIFY_BREAKER_THRESHOLD):
            assert breaker.allow("test") is True
            breaker.failure("test")
        assert breaker.allow("test") is False
        clock.move_to(T0 + timedelta(seconds=settings.NOTIFY_BREAKER_OPEN_SECONDS))
        assert [breaker.allow("test") for _ in range(3)] == [True, False, False]
        breaker.success("test")
        assert breaker.state("test") == breaker.CLOSED and breaker.allow("test") is True


# ----- concurrency ---------------------------------------------------------------------------


def _in_threads(*calls):
    results = [None] * len(calls)
    barrier = threading.Barrier(len(calls))

    def run(i, fn):
        try:
            barrier.wait()
            results[i] = fn()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, fn)) for i, fn in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results


@pytest.mark.django_db(transaction=True)
def test_the_same_row_delivered_twice_concurrently_posts_once(fake_slack, service):
    link = channel_link(service)
    n = notification(IncidentFactory(service=service), "slack", target=f"slack-channel:{link.pk}")
    fake_slack.delay = 0.3  # both deliverers are surely in flight together

    results = _in_threads(lambda: outbox.deliver(n.pk), lambda: outbox.deliver(n.pk))

    assert sorted(results) == ["delivered", "skipped"]
    assert len(fake_slack.calls("chat.postMessage")) == 1
    assert reload(n).attempts == 1


@pytest.mark.django_db(transaction=True)
def test_two_rows_for_one_incident_and_channel_make_one_message(fake_slack, service):
    link = channel_link(service)
    incident = IncidentFactory(service=service)
    a = notification(incident, "slack", target=f"slack-channel:{link.pk}")
    b = notification(incident, "slack", target=f"slack-channel:{link.pk}")
    fake_slack.delay = 0.3

    results = _in_threads(lambda: outbox.deliver(a.pk), lambda: outbox.deliver(b.pk))

    assert results == ["delivered", "delivered"]
    assert len(fake_slack.calls("chat.postMessage")) == 1
    assert len(fake_slack.calls("chat.update")) == 1
    message = SlackMessage.objects.get(incident=incident)
    assert reload(a).external_id == reload(b).external_id == message.ts


# ----- SMS and voice -------------------------------------------------------------------------


@pytest.mark.django_db
def test_sms_fits_160_characters_with_the_incident_number(fake_twilio, service):
    user = UserFactory(username="sam")
    ContactMethod.objects.create(user=user, kind="sms", address="+4915112345678", verified=True)
    incident = IncidentFactory(service=service, severity="critical", title="Checkout latency " * 20)
    n = notification(incident, "sms", recipient=user)

    assert outbox.deliver(n.pk) == "delivered"

    [request] = fake_twilio.calls("Messages.json")
    assert request.data["To"] == "+4915112345678" and request.data["From"] == "+15005550006"
    assert len(request.data["Body"]) <= 160 and f"#{incident.number}" in request.data["Body"]
    assert reload(n).external_id.startswith("SM")
    assert len(sms.body(IncidentFactory(service=service, title="x"))) <= 160


@pytest.mark.django_db
def test_twilio_5xx_is_retried(fake_twilio, service):
    user = UserFactory(username="sam")
    ContactMethod.objects.create(user=user, kind="sms", address="+4915112345678")
    fake_twilio.fail("Messages.json", 503, body={"code": 20500, "message": "Service unavailable", "status": 503})
    n = notification(IncidentFactory(service=service), "sms", recipient=user)
    assert outbox.deliver(n.pk) == "retry"
    assert "503" in reload(n).last_error


@pytest.mark.django_db
def test_twilio_refusal_keeps_its_code_not_its_message(fake_twilio, service):
    user = UserFactory(username="sam")
    ContactMethod.objects.create(user=user, kind="sms", address="+4915112345678")
    fake_twilio.fail("Messages.json", 400, body={
        "code": 21211, "message": "The 'To' number +4915112345678 is not a valid phone number.", "status": 400,
    })
    n = notification(IncidentFactory(service=service), "sms", recipient=user)
    assert outbox.deliver(n.pk) == "failed"
    assert reload(n).last_error == "HTTP 400: twilio error 21211"


@pytest.mark.django_db
def test_voice_call_reads_the_incident_and_press_1_acknowledges(fake_twilio, service, client, settings):
    from twilio.request_validator import RequestValidator

    user = MembershipFactory(team=service.team, user=UserFactory(username="vic")).user
    ContactMethod.objects.create(user=user, kind="voice", address="+4915112345678")
    incident = IncidentFactory(service=service, title="Database down")
    n = notification(incident, "voice", recipient=user)

    assert outbox.deliver(n.pk) == "delivered"
    [request] = fake_twilio.calls("Calls.json")
    twiml = request.data["Twiml"]
    assert "<Gather" in twiml and "Press 1 to acknowledge" in twiml and "Database down" in twiml
    path = f"/integrations/twilio/voice/{n.pk}/gather"
    assert f'action="http://testserver{path}"' in twiml

    form = {"CallSid": request.data.get("CallSid", "CA1"), "Digits": "1"}
    bad = client.post(path, form, HTTP_X_TWILIO_SIGNATURE="forged")
    assert bad.status_code == 403
    incident.refresh_from_db()
    assert incident.status == "triggered"

    signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(settings.SITE_URL + path, form)
    good = client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)
    assert good.status_code == 200 and b"Acknowledged" in good.content
    incident.refresh_from_db()
    assert incident.status == "acknowledged" and incident.acknowledged_by == user


def twilio_callback(client, settings, path: str, form: dict, *, signature: str | None = None):
    """POST as Twilio does: the form, signed over our public URL with the auth token."""
    from twilio.request_validator import RequestValidator

    if signature is None:
        signature = RequestValidator(settings.TWILIO_AUTH_TOKEN).compute_signature(settings.SITE_URL + path, form)
    return client.post(path, form, HTTP_X_TWILIO_SIGNATURE=signature)


@pytest.mark.django_db
def test_twilio_status_callbacks_record_the_final_status_on_the_row_and_page(fake_twilio, service, client, settings):
    from django.contrib.auth import get_user_model

    user = UserFactory(username="sam")
    ContactMethod.objects.create(user=user, kind="sms", address="+4915112345678")
    incident = IncidentFactory(service=service)
    text, call = notification(incident, "sms", recipient=user), notification(incident, "voice", recipient=user)
    assert outbox.deliver(text.pk) == outbox.deliver(call.pk) == "delivered"
    [sent] = fake_twilio.calls("Messages.json")
    [placed] = fake_twilio.calls("Calls.json")
    sms_path, call_path = f"/integrations/twilio/status/{text.pk}", f"/integrations/twilio/status/{call.pk}"
    assert sent.data["StatusCallback"] == settings.SITE_URL + sms_path
    assert placed.data["StatusCallback"] == settings.SITE_URL + call_path
    sms_sid, call_sid = reload(text).external_id, reload(call).external_id
    undelivered = {"MessageSid": sms_sid, "MessageStatus": "undelivered", "ErrorCode": "30003", "To": "+4915112345678"}

    # A forged report is refused and changes nothing.
    assert twilio_callback(client, settings, sms_path, undelivered, signature="forged").status_code == 403
    assert reload(text).external_status == "" and reload(text).last_error == ""
    # A step on the way (sent) is not a final status.
    sent_report = {**undelivered, "MessageStatus": "sent"}
    del sent_report["ErrorCode"]
    assert twilio_callback(client, settings, sms_path, sent_report).status_code == 204
    assert reload(text).external_status == ""
    # Another message's SID for this row is refused.
    assert twilio_callback(client, settings, sms_path, {**undelivered, "MessageSid": "SMother"}).status_code == 404

    assert twilio_callback(client, settings, sms_path, undelivered).status_code == 204
    assert twilio_callback(client, settings, sms_path, undelivered).status_code == 204  # Twilio retried: once
    assert twilio_callback(client, settings, call_path, {"CallSid": call_sid, "CallStatus": "no-answer"}).status_code == 204

    text, call = reload(text), reload(call)
    assert (text.status, text.external_status, text.last_error) == ("delivered", "undelivered", "twilio: undelivered (error 30003)")
    assert (call.external_status, call.last_error) == ("no-answer", "twilio: no-answer")
    reports = AuditEntry.objects.filter(verb="notification.reported", incident=incident)
    assert sorted(r.data["status"] for r in reports) == ["no-answer", "undelivered"]

    client.force_login(get_user_model().objects.create_superuser("root", "root@example.org", "pw"))
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "<td>undelivered</td>" in page and "<td>no-answer</td>" in page and "error 30003" in page


# ----- end to end, with the real worker -------------------------------------------------------


def test_a_new_incident_is_announced_on_slack_and_webhooks_by_the_worker(
    celery_worker, fake_slack, fake_receiver, ingest_path, client, service
):
    channel_link(service)
    hook = endpoint(service, fake_receiver.url + "/hook")
    body = {
        "version": "4", "status": "firing", "receiver": "im", "groupKey": "g",
        "alerts": [{"status": "firing", "labels": {"alertname": "CheckoutDown", "severity": "critical"},
                    "annotations": {"summary": "Checkout is down"}, "fingerprint": "abc"}],
    }
    response = client.post(ingest_path(), body, content_type="application/json")
    assert response.status_code == 202

    # The worker settles the incident first; its first settle loads the embedding model.
    [post] = fake_slack.wait_for("chat.postMessage", timeout=60)
    [hooked] = fake_receiver.wait_for("hook")
    assert post.data["channel"] == "C0123INCID" and "Checkout is down" in post.data["text"]
    actions = [b for b in post.data["blocks"] if b["type"] == "actions"][0]["elements"]
    assert [e.get("action_id") for e in actions][:3] == ["incident_ack", "incident_resolve", "incident_escalate"]
    assert webhook.verify(hook.secret, {k.lower(): v for k, v in hooked.headers.items()}, hooked.body)
    incident_id = response.json()["alerts"][0]["incident"]
    rows = Notification.objects.filter(incident_id=incident_id)
    deadline = timezone.now() + timedelta(seconds=5)
    while rows.filter(status="delivered").count() < 2 and timezone.now() < deadline:
        pass
    assert sorted(rows.values_list("channel", "status")) == [("slack", "delivered"), ("webhook", "delivered")]


# ----- webhooks reach public addresses only (apps/notifications/egress.py) ---------------------


@pytest.fixture
def resolver(monkeypatch):
    """A fake DNS at the edge: names in `answers` resolve to the next address of their
    list (the last one repeats), as a rebinding attacker's server answers."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            return real(host, port, *args, **kwargs)
        address = answers[host].pop(0) if len(answers[host]) > 1 else answers[host][0]
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [(family, socket.SOCK_STREAM, 6, "", (address, port))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def add_webhook(client, service, url):
    return client.post("/admin/notifications/webhookendpoint/add/",
                       {"name": "ops", "url": url, "service": service.pk, "is_active": "on"})


@pytest.mark.django_db
@pytest.mark.parametrize(("url", "kind"), [
    ("http://127.0.0.1:8080/hook", "loopback"),
    ("http://localhost/hook", "loopback"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://10.1.2.3/hook", "private"),
    ("https://192.168.0.10/hook", "private"),
    ("http://172.16.5.4/hook", "private"),
    ("http://[::1]/hook", "loopback"),
    ("http://[fd00::1]/hook", "private"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://224.0.0.1/hook", "multicast"),
    ("http://0.0.0.0/hook", "unspecified"),
    ("http://240.0.0.1/hook", "private"),
    ("http://100.64.0.1/hook", "not public"),
])
def test_a_webhook_to_an_internal_address_is_refused_when_saved_naming_the_url(client, service, url, kind):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = add_webhook(client, service, url)
    assert response.status_code == 200  # the form again, with its error
    [error] = response.context["adminform"].form.errors["url"]
    assert f"a {kind} address" in error and "WEBHOOK_ALLOWED_NETWORKS" in error
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_public_addresses_and_the_allow_list_are_saved(client, service, settings, resolver):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    resolver["hooks.example.org"] = ["93.184.215.14"]
    assert add_webhook(client, service, "https://hooks.example.org/incidents").status_code == 302
    settings.WEBHOOK_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    assert add_webhook(client, service, "http://10.20.3.4:8080/hook").status_code == 302
    assert add_webhook(client, service, "http://10.21.3.4:8080/hook").status_code == 200  # outside the range named
    assert sorted(WebhookEndpoint.objects.values_list("url", flat=True)) == [
        "http://10.20.3.4:8080/hook", "https://hooks.example.org/incidents",
    ]


@pytest.mark.django_db
def test_a_name_that_turns_internal_after_it_was_saved_is_refused_at_send(fake_receiver, service, settings, resolver):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    port = fake_receiver.url.rsplit(":", 1)[1]
    resolver["hooks.example.org"] = ["93.184.215.14", "127.0.0.1"]  # public when checked, then loopback
    hook = WebhookEndpoint(name="ops", url=f"http://hooks.example.org:{port}/hook", service=service)
    hook.full_clean()
    hook.secret = webhook.new_secret()
    hook.save()
    n = notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}")

    assert outbox.deliver(n.pk) == "failed"  # final: retrying would not make it public
    assert reload(n).last_error == "webhook URL refused: resolves to a loopback address"
    assert fake_receiver.calls("hook") == []


@pytest.mark.django_db
def test_a_webhook_is_sent_to_the_address_that_was_checked(fake_receiver, service, resolver):
    """A name checked as allowed and then answering elsewhere (DNS rebinding) is not
    looked up again: the request goes to the address checked, named by its Host."""
    port = fake_receiver.url.rsplit(":", 1)[1]
    resolver["hooks.example.org"] = ["127.0.0.1", "10.9.9.9"]  # allowed (the fixture's list), then elsewhere
    hook = endpoint(service, f"http://hooks.example.org:{port}/hook")
    n = notification(IncidentFactory(service=service), "webhook", target=f"webhook:{hook.pk}")

    assert outbox.deliver(n.pk) == "delivered"
    [request] = fake_receiver.calls("hook")
    assert {k.lower(): v for k, v in request.headers.items()}["host"] == f"hooks.example.org:{port}"


# ----- what people see -----------------------------------------------------------------------


@pytest.mark.django_db
def test_incident_page_and_admin_show_attempts_never_secrets(client, service, fake_receiver):
    from django.contrib.auth import get_user_model

    admin = get_user_model().objects.create_superuser("root", "root@example.org", "pw")
    hook = endpoint(service, fake_receiver.url + "/hook")
    fake_receiver.fail("hook", 500)
    incident = IncidentFactory(service=service)
    n = notification(incident, "webhook", target=f"webhook:{hook.pk}")
    outbox.deliver(n.pk)
    link = channel_link(service)
    client.force_login(admin)

    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "Notifications" in page and "HTTP 500" in page and "pending" in page

    listing = client.get("/admin/notifications/notification/").content.decode()
    assert "HTTP 500" in listing
    change = client.get(f"/admin/notifications/slackworkspace/{link.workspace.pk}/change/").content.decode()
    assert "xoxb-test-token" not in change and "8f742231b10e" not in change
    assert link.workspace.signing_secret_sealed not in change


@pytest.mark.django_db
def test_a_receivers_error_body_is_never_shown_only_its_status(client, service, fake_receiver):
    """An internal service behind a webhook URL would otherwise read back to every
    viewer through the timeline."""
    hook = endpoint(service, fake_receiver.url + "/hook")
    fake_receiver.fail("hook", 403, body={"error": "forbidden", "env": {"DB_PASSWORD": "hunter2"}})
    incident = IncidentFactory(service=service)
    n = notification(incident, "webhook", target=f"webhook:{hook.pk}")

    assert outbox.deliver(n.pk) == "failed"

    assert reload(n).last_error == "HTTP 403: Forbidden"
    [failed] = AuditEntry.objects.filter(verb="notification.failed", incident=incident)
    assert failed.data["error"] == "HTTP 403: Forbidden"
    membership = MembershipFactory(team=service.team, role="viewer")
    client.force_login(membership.user)
    page = client.get(f"/incidents/{incident.pk}/").content.decode()
    assert "HTTP 403: Forbidden" in page and "hunter2" not in page


@pytest.mark.django_db
def test_digest_rows_of_one_person_go_out_as_one_mail(fake_smtp, service):
    user = UserFactory(username="dora", email="dora@example.org")
    low = [IncidentFactory(service=service, severity="low", title=f"Minor {i}") for i in range(3)]
    rows = [notification(i, "email", recipient=user, reason={"digest": True}) for i in low]
    later = notification(low[0], "email", recipient=user, reason={"digest": True}, next_attempt_at=timezone.now() + timedelta(hours=1))

    assert outbox.deliver(rows[0].pk) == "delivered"
    assert [outbox.deliver(n.pk) for n in rows[1:]] == ["skipped", "skipped"]  # already sent with it

    [mail] = fake_smtp.messages
    parsed = fake_smtp.parsed()
    assert parsed["Subject"] == "Digest: 3 low-severity incidents"
    text = next(p for p in parsed.walk() if p.get_content_type() == "text/plain").get_payload(decode=True).decode()
    assert all(f"#{i.number} [low] Minor" in text for i in low)
    assert {reload(n).external_id for n in rows} == {parsed["Message-ID"]}
    assert reload(later).status == "pending"


@pytest.mark.django_db
def test_the_beat_sends_due_retries_and_forgotten_rows_once(service, settings):
    from django.core.cache import cache

    incident = IncidentFactory(service=service)
    now = timezone.now()
    fresh = notification(incident, "email", next_attempt_at=now)  # its own task is on the way
    forgotten = notification(incident, "email", next_attempt_at=now - timedelta(seconds=30))
    retry = notification(incident, "email", next_attempt_at=now - timedelta(seconds=1), attempts=1)
    later = notification(incident, "email", next_attempt_at=now + timedelta(seconds=5), attempts=1)
    delayed = notification(incident, "email", next_attempt_at=now)  # a level's page written minutes ago, due now
    Notification.objects.filter(pk__in=[forgotten.pk, delayed.pk]).update(created_at=now - timedelta(minutes=3))
    cache.delete_many([f"notify-enqueued:{n.pk}" for n in (fresh, forgotten, retry, later, delayed)])

    due = outbox.due_ids()
    assert set(due) == {forgotten.pk, retry.pk, delayed.pk}
    assert sorted(outbox.claim_for_enqueue(due)) == sorted(due)
    assert outbox.claim_for_enqueue(due) == []  # not queued again a second later


@pytest.mark.django_db(transaction=True)
def test_a_row_the_escalation_tick_writes_is_sent_by_its_own_task_at_once(celery_worker, fake_smtp, service):
    """Not 5 s later by the beat's sweep (which leaves fresh rows to their own task)."""
    from django.db import transaction

    person = UserFactory(username="pat", email="pat@example.org")
    incident = IncidentFactory(service=service)
    with transaction.atomic():
        outbox.write([Notification(incident=incident, recipient=person, channel="email", idempotency_key="tick:1",
                                   next_attempt_at=timezone.now())])
    deadline = time.monotonic() + 3
    while not fake_smtp.messages:
        assert time.monotonic() < deadline, "the row's own task did not send it"
        time.sleep(0.05)
    assert Notification.objects.get(idempotency_key="tick:1").status == "delivered"
