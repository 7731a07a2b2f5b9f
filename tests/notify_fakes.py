"""Fakes at the network edge for the outbound channels: local HTTP servers standing in
for slack.com/api, api.twilio.com and webhook receivers, and aiosmtpd for SMTP.  The
project's code and the real SDKs run unchanged against them."""

import json
import threading
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.core.cache import cache

from apps.incidents import throttle

from .conftest import free_port


class Recorded:
    def __init__(self, method, path, headers, body, data, at):
        self.method, self.path, self.headers, self.body, self.data, self.at = method, path, headers, body, data, at

    def __repr__(self):
        return f"<{self.method} {self.path} {self.data}>"


class FakeServer:
    """A threaded HTTP server that records requests and answers from a script:
    `fail(key, status, times, headers)` makes the next `times` requests whose key
    matches fail; otherwise `respond(key, request)` answers."""

    def __init__(self):
        self.requests: list[Recorded] = []
        self.script: dict[str, list] = defaultdict(list)
        self.delay: float = 0.0
        self.changed = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self)

            def do_POST(self):
                fake._handle(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def fail(self, key: str, status: int, times: int = 1, headers: dict | None = None, body: dict | None = None):
        self.script[key] += [(status, headers or {}, body)] * times

    def key(self, request: Recorded) -> str:
        return request.path

    def respond(self, key: str, request: Recorded) -> tuple[int, dict, dict]:
        return 200, {}, {"ok": True}

    def accepted(self, request: Recorded) -> None:
        """The request has arrived (the provider has it, whether or not its caller lives
        to read the answer)."""

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        content_type = handler.headers.get("Content-Type", "")
        if content_type.startswith("application/json") and body:
            data = json.loads(body)
        else:
            data = {k: v[0] for k, v in parse_qs(body.decode() or parts.query).items()}
        request = Recorded(handler.command, parts.path, dict(handler.headers), body, data, time.monotonic())
        with self.changed:  # recorded before the answer: a caller that got it sees the call
            self.requests.append(request)
            self.accepted(request)
            self.changed.notify_all()
        if self.delay:
            time.sleep(self.delay)
        key = self.key(request)
        if self.script.get(key):
            status, headers, payload = self.script[key].pop(0)
            payload = payload if payload is not None else {"ok": False, "error": f"scripted {status}"}
        else:
            status, headers, payload = self.respond(key, request)
        raw = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(raw)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(raw)

    def calls(self, key: str) -> list[Recorded]:
        return [r for r in list(self.requests) if self.key(r) == key]

    def wait_for(self, key: str, count: int = 1, timeout: float = 10.0) -> list[Recorded]:
        deadline = time.monotonic() + timeout
        with self.changed:
            while len(self.calls(key)) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{key}: {len(self.calls(key))} calls, expected {count}: {self.requests}")
                self.changed.wait(left)
        return self.calls(key)


class FakeSlack(FakeServer):
    """slack.com/api: chat.postMessage, chat.update, chat.postEphemeral, users.info,
    conversations.open and conversations.history (with message metadata)."""

    def __init__(self):
        super().__init__()
        self.emails: dict[str, str] = {}
        self._ts = 0
        self._ts_lock = threading.Lock()
        self.posted: dict[int, dict] = {}  # id(request) -> the message, as Slack keeps it

    def accepted(self, request):
        if self.key(request) != "chat.postMessage":
            return
        with self._ts_lock:
            self._ts += 1
            ts = f"{int(time.time())}.{self._ts:06d}"  # as Slack's: when it was posted
        channel = request.data.get("channel", "")
        # A message to a user goes to the DM channel with them (D + the user id here).
        self.posted[id(request)] = {"ts": ts, "channel": "D" + channel if channel.startswith("U") else channel,
                                    "text": request.data.get("text"), "metadata": request.data.get("metadata")}

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def key(self, request):
        return request.path.removeprefix("/api/")

    def respond(self, method, request):
        data = request.data
        if method == "chat.postMessage":
            message = self.posted[id(request)]
            return 200, {}, {"ok": True, "channel": message["channel"], "ts": message["ts"], "message": {"text": data.get("text")}}
        if method == "conversations.open":
            return 200, {}, {"ok": True, "channel": {"id": "D" + data.get("users", "")}}
        if method == "conversations.history":
            channel, oldest = data.get("channel"), float(data.get("oldest") or 0)
            with_metadata = data.get("include_all_metadata") in ("1", "true", "True")
            messages = [
                {"type": "message", "ts": m["ts"], "text": m["text"], **({"metadata": m["metadata"]} if with_metadata and m["metadata"] else {})}
                for m in reversed(list(self.posted.values())) if m["channel"] == channel and float(m["ts"]) > oldest
            ]
            return 200, {}, {"ok": True, "messages": messages, "has_more": False}
        if method == "chat.update":
            return 200, {}, {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": "1764089999.000001"}
        if method == "users.info":
            user = data.get("user")
            if user not in self.emails:
                return 200, {}, {"ok": False, "error": "user_not_found"}
            return 200, {}, {"ok": True, "user": {"id": user, "profile": {"email": self.emails[user]}}}
        return 200, {}, {"ok": False, "error": "unknown_method"}


class FakeTwilio(FakeServer):
    def key(self, request):
        return request.path.rsplit("/", 1)[-1]  # Messages.json, Calls.json

    def respond(self, key, request):
        prefix = {"Messages.json": "SM", "Calls.json": "CA"}.get(key, "XX")
        sid = f"{prefix}{len(self.requests):032x}"
        return 201, {}, {"sid": sid, "status": "queued", "to": request.data.get("To"), "from": request.data.get("From")}


class FakeReceiver(FakeServer):
    """A webhook receiver."""

    def key(self, request):
        return "hook"


class FakeSmtp:
    """aiosmtpd on a free port; `refuse(code_text, times)` answers RCPT with an error."""

    def __init__(self):
        import logging

        from aiosmtpd.controller import Controller

        logging.getLogger("mail.log").setLevel(logging.WARNING)

        self.messages = []
        self.refusals: list[str] = []
        fake = self

        class Handler:
            async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
                if fake.refusals:
                    return fake.refusals.pop(0)
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(self, server, session, envelope):
                fake.messages.append(envelope)
                return "250 Message accepted"

        self.port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def refuse(self, reply: str, times: int = 1):
        self.refusals += [reply] * times

    def close(self):
        self.controller.stop()

    def parsed(self, index: int = -1):
        from email import message_from_bytes

        return message_from_bytes(self.messages[index].content)


def reset_breakers():
    client = cache._cache.get_client(None, write=True)
    for key in client.scan_iter(match="*breaker:*"):
        client.delete(key)
    for key in client.scan_iter(match="*slack-followup:*"):
        client.delete(key)
    throttle.forget()


@pytest.fixture
def fake_slack(settings):
    fake = FakeSlack()
    settings.SLACK_API_URL = fake.api_url
    yield fake
    fake.close()


@pytest.fixture
def fake_smtp(settings):
    fake = FakeSmtp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = fake.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "incidents@im.example.org"
    yield fake
    fake.close()


@pytest.fixture
def fake_twilio(settings):
    fake = FakeTwilio()
    settings.TWILIO_API_BASE = fake.url
    settings.TWILIO_ACCOUNT_SID = "AC" + "0" * 32
    settings.TWILIO_AUTH_TOKEN = "twilio-test-auth-token"
    settings.TWILIO_FROM = "+15005550006"
    yield fake
    fake.close()


@pytest.fixture
def fake_receiver(settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.1/32"]  # it listens on loopback, which webhooks may not reach
    fake = FakeReceiver()
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def _clean_breakers(settings):
    settings.SITE_URL = "http://testserver"
    settings.NOTIFY_TIMEOUT = 2.0
    reset_breakers()
    yield
    reset_breakers()
