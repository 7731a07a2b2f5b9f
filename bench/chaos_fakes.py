"""Local HTTP servers at the network edge of a chaos run (bench/chaos.py).

- FakeSlack and FakeTwilio stand in for slack.com/api and api.twilio.com, shaped as
  tests/notify_fakes.py's fakes (copied, not imported: tests/ is not the bench's).  Each
  records every message it takes, with the Notification row it came from (Slack's
  message metadata, Twilio's StatusCallback URL), at the moment it takes it: from then
  on the provider has the message, whether or not the sender lives to read the answer.
  `hold()` makes them keep their answers back, so that a worker can be killed while its
  sends are in flight.
- Tap is what stands between Alertmanager (and the acknowledging client) and gunicorn: a
  pass-through proxy that records each webhook POST (its alerts, our answer, the alert
  ids a 202 named) and, with two web instances, balances between them as a load
  balancer would (the next instance when one refuses the connection).
"""

import http.client
import itertools
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

HOLD_MAX = 3.0  # seconds an answer is kept back: under the senders' 5 s timeout (NOTIFY_TIMEOUT)


@dataclass
class Received:
    """One message a fake provider took."""

    at: float  # time.time() when it arrived
    provider: str  # slack, twilio
    method: str  # chat.postMessage, Messages.json, Calls.json
    to: str  # Slack channel or user, phone number
    notification: int | None  # the Notification row it delivers
    incident: int | None
    client_port: int
    held: bool = False
    ts: str = ""  # Slack's ts for the message


class QuietServer(ThreadingHTTPServer):
    """A client that goes away mid-request (Alertmanager closing a kept-alive connection,
    a killed worker) is routine here, not an error to print."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        pass


class _Server:
    """A threaded HTTP server that records requests and answers them through `answer()`."""

    def __init__(self):
        self.lock = threading.Lock()
        self.requests = 0
        self.received: list[Received] = []
        self._holding = threading.Event()
        self._release = threading.Event()
        self.in_hold: list[Received] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                fake._handle(self)

            def do_POST(self):
                fake._handle(self)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def hold(self) -> None:
        """Keep the answers to messages back (up to HOLD_MAX) until release()."""
        self._release.clear()
        self._holding.set()

    def release(self) -> None:
        self._holding.clear()
        self._release.set()

    def held_now(self) -> list[Received]:
        with self.lock:
            return list(self.in_hold)

    def _handle(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        parts = urlsplit(handler.path)
        if handler.headers.get("Content-Type", "").startswith("application/json") and body:
            data = json.loads(body)
        else:
            data = {k: v[0] for k, v in parse_qs(body.decode() or parts.query).items()}
        record = self.record(parts.path, data, handler.client_address[1])
        with self.lock:
            self.requests += 1
            if record:
                self.received.append(record)
        if record and self._holding.is_set():
            record.held = True
            with self.lock:
                self.in_hold.append(record)
            self._release.wait(HOLD_MAX)
            with self.lock:
                self.in_hold.remove(record)
        status, payload = self.answer(parts.path, data, record)
        raw = json.dumps(payload).encode()
        try:
            handler.send_response(status)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(raw)))
            handler.end_headers()
            handler.wfile.write(raw)
        except OSError:
            pass  # the sender died while we held its answer: that is the point

    def record(self, path: str, data: dict, client_port: int) -> Received | None:
        raise NotImplementedError

    def answer(self, path: str, data: dict, record: Received | None) -> tuple[int, dict]:
        raise NotImplementedError


class FakeSlack(_Server):
    """chat.postMessage (to a channel or a person), chat.update, conversations.open and
    conversations.history with message metadata (what the outbox's find_sent reads after
    a worker died mid-send)."""

    def __init__(self):
        super().__init__()
        self._ts = itertools.count(1)
        self.messages: list[dict] = []  # as Slack keeps them, for conversations.history

    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    def record(self, path, data, client_port):
        method = path.removeprefix("/api/")
        if method != "chat.postMessage" or data.get("thread_ts"):
            return None  # updates and thread replies are not pages
        payload = (data.get("metadata") or {}).get("event_payload") or {}
        channel = data.get("channel", "")
        ts = f"{int(time.time())}.{next(self._ts):06d}"
        with self.lock:
            # A message to a person goes to the DM channel with them (D + the user id).
            self.messages.append({"ts": ts, "channel": "D" + channel if channel.startswith("U") else channel,
                                  "text": data.get("text"), "metadata": data.get("metadata")})
        return Received(time.time(), "slack", method, channel, payload.get("notification"), payload.get("incident"),
                        client_port, ts=ts)

    def answer(self, path, data, record):
        method = path.removeprefix("/api/")
        if method == "chat.postMessage":
            ts = record.ts if record else f"{time.time():.6f}"
            channel = data.get("channel", "")
            return 200, {"ok": True, "channel": "D" + channel if channel.startswith("U") else channel, "ts": ts}
        if method == "conversations.open":
            return 200, {"ok": True, "channel": {"id": "D" + data.get("users", "")}}
        if method == "conversations.history":
            channel, oldest = data.get("channel"), float(data.get("oldest") or 0)
            with self.lock:
                found = [m for m in reversed(self.messages) if m["channel"] == channel and float(m["ts"]) > oldest]
            return 200, {"ok": True, "has_more": False, "messages": [
                {"type": "message", "ts": m["ts"], "text": m["text"], **({"metadata": m["metadata"]} if m["metadata"] else {})}
                for m in found]}
        if method == "chat.update":
            return 200, {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
        return 200, {"ok": False, "error": "unknown_method"}


NOTIFICATION_IN_CALLBACK = re.compile(r"/integrations/twilio/status/(\d+)")


class FakeTwilio(_Server):
    """Messages.json and Calls.json; the row a message delivers is in its StatusCallback."""

    def record(self, path, data, client_port):
        method = path.rsplit("/", 1)[-1]
        if method not in ("Messages.json", "Calls.json"):
            return None
        match = NOTIFICATION_IN_CALLBACK.search(data.get("StatusCallback", ""))
        return Received(time.time(), "twilio", method, data.get("To", ""), int(match.group(1)) if match else None,
                        None, client_port)

    def answer(self, path, data, record):
        prefix = "SM" if path.endswith("Messages.json") else "CA"
        with self.lock:
            sid = f"{prefix}{self.requests:032x}"
        return 201, {"sid": sid, "status": "queued", "to": data.get("To"), "from": data.get("From")}


# ----- the tap in front of gunicorn -----------------------------------------------------------


@dataclass
class Forwarded:
    """One webhook POST from Alertmanager, as the tap saw it."""

    started: float
    alerts: list[tuple[str, str, str, str, str]]  # (service, alertname, instance, status, startsAt)
    upstream: int = 0
    local_port: int = 0
    ended: float = 0.0
    status: int | None = None  # None: the connection broke before an answer
    error: str = ""
    alert_ids: list[int] = field(default_factory=list)


class Tap:
    """A pass-through HTTP proxy in front of one or more gunicorn instances."""

    def __init__(self, upstreams: list[int]):
        self.upstreams = list(upstreams)
        self._next = itertools.count()
        self.lock = threading.Lock()
        self.webhooks: list[Forwarded] = []
        self.in_flight: dict[int, Forwarded] = {}  # id(record) -> record, while the upstream has it
        tap = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                tap._forward(self)

            def do_POST(self):
                tap._forward(self)

        self.server = QuietServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()

    def _forward(self, handler):
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = self._webhook(handler.path, body)
        headers = {k: v for k, v in handler.headers.items() if k.lower() in ("content-type", "authorization", "content-length")}
        status, reply, reply_headers = self._send(handler.command, handler.path, body, headers, record)
        try:
            handler.send_response(status)
            for name, value in reply_headers:
                if name.lower() in ("content-type", "retry-after"):
                    handler.send_header(name, value)
            handler.send_header("Content-Length", str(len(reply)))
            handler.end_headers()
            handler.wfile.write(reply)
        except OSError:
            pass

    def _webhook(self, path: str, body: bytes) -> Forwarded | None:
        if "/api/v1/ingest/" not in path:
            return None
        try:
            alerts = json.loads(body).get("alerts") or []
        except ValueError:
            alerts = []
        keys = [(a["labels"].get("service", ""), a["labels"].get("alertname", ""), a["labels"].get("instance", ""),
                 a.get("status", ""), a.get("startsAt", "")) for a in alerts]
        record = Forwarded(time.time(), keys)
        with self.lock:
            self.webhooks.append(record)
        return record

    def _send(self, method, path, body, headers, record):
        """To the next instance; one that refuses the connection is skipped (nothing was
        sent to it).  A connection that breaks after the request went out is a 502, as a
        load balancer answers: Alertmanager retries 5xx."""
        order = next(self._next)
        last_error = ""
        for k in range(len(self.upstreams)):
            port = self.upstreams[(order + k) % len(self.upstreams)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.connect()
            except OSError as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if record:
                record.upstream, record.local_port = port, conn.sock.getsockname()[1]
                with self.lock:
                    self.in_flight[id(record)] = record
            try:
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                reply = response.read()
                if record:
                    record.status = response.status
                    if response.status == 202:
                        record.alert_ids = [a.get("alert") for a in json.loads(reply).get("alerts", [])]
                return response.status, reply, response.getheaders()
            except (OSError, http.client.HTTPException, ValueError) as exc:
                if record:
                    record.error = f"{type(exc).__name__}: {exc}"
                return 502, json.dumps({"error": f"upstream: {exc}"}).encode(), [("Content-Type", "application/json")]
            finally:
                conn.close()
                if record:
                    record.ended = time.time()
                    with self.lock:
                        self.in_flight.pop(id(record), None)
        if record:
            record.error, record.ended = f"no instance took the connection ({last_error})", time.time()
        return 502, json.dumps({"error": "no upstream"}).encode(), [("Content-Type", "application/json")]
