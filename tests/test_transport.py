"""Transport (issue 16 part 5): with the site on HTTPS, Secure cookies, HSTS, the redirect
and the proxy's scheme header; a Content-Security-Policy everywhere; nginx in front,
serving TLS and logging no token.  `make run`'s plain HTTP on 127.0.0.1 keeps working.

The configurations are tried as deployed: `manage.py check --deploy` and gunicorn in
subprocesses with a deployment's environment, and nginx itself where it is installed
(Debian's nginx-light; `make test` installs it where it can).  docs/adr/0012.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from django.conf import settings
from django.urls import URLPattern

from apps.integrations.services import create_integration, ingestion_url
from incident_manager.urls import urlpatterns

from .conftest import free_port, load_fixture, process_env, serve_asgi
from .factories import UserFactory

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx.conf"
SITE = "incidents.example.org"
# A deployment's environment: the site on HTTPS says the rest (settings.py, Transport).
PRODUCTION = {"SITE_URL": f"https://{SITE}", "ALLOWED_HOSTS": f"{SITE},127.0.0.1", "DEBUG": "false"}
PASSWORD = "correct horse battery staple"  # tests/factories.py


def check_deploy(**env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT, env=process_env(**env), capture_output=True, text=True, timeout=120,
    )


def test_check_deploy_finds_nothing_to_warn_about_once_the_site_is_on_https():
    strong_key = secrets.token_urlsafe(50)
    production = check_deploy(**PRODUCTION, SECRET_KEY=strong_key, SECURE_HSTS_PRELOAD="true")
    assert production.returncode == 0, production.stdout + production.stderr
    assert "System check identified no issues" in production.stdout, production.stdout
    # Joining the browsers' preload list is a promise for the whole domain: asked for, not assumed.
    unasked = check_deploy(**PRODUCTION, SECRET_KEY=strong_key)
    assert re.findall(r"\(security\.W\d+\)", unasked.stderr) == ["(security.W021)"], unasked.stderr

    # `make run` and the tests, on plain HTTP: none of it, on purpose (cookies that were
    # Secure would never come back over http://127.0.0.1), and check --deploy says so.
    plain = check_deploy(SITE_URL="http://127.0.0.1:8000", DEBUG="false", SECRET_KEY=strong_key)
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in plain.stderr + plain.stdout, warning


@pytest.fixture
def gunicorn(transactional_db):
    """Starts the web process as deployed (incident_manager.wsgi under deploy/gunicorn.conf.py)."""
    started = []

    def start(*args: str, **env) -> str:
        port = free_port()
        web = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "incident_manager.wsgi", "-c", "deploy/gunicorn.conf.py",
             "-b", f"127.0.0.1:{port}", *args],
            cwd=ROOT, env=process_env(WEB_CONCURRENCY="1", **env),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        started.append(web)
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/healthz", timeout=1)
                return base
            except httpx.TransportError:
                assert web.poll() is None, web.stderr.read().decode()
                assert time.monotonic() < deadline, "gunicorn did not start"
                time.sleep(0.2)

    yield start
    for web in started:
        web.terminate()
        web.wait(timeout=15)


def cookies_of(response: httpx.Response) -> dict:
    """Set-Cookie headers by name, with their attributes."""
    jar = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        jar.load(header)
    return {name: morsel for name, morsel in jar.items()}


def sign_in(client: httpx.Client, base: str, headers: dict, origin: str) -> tuple[httpx.Response, httpx.Response]:
    """allauth's login form, posted with its CSRF cookie as a browser would: (the form, the answer)."""
    form = client.get(base + "/accounts/login/", headers=headers)
    assert form.status_code == 200, form.text
    csrf = cookies_of(form)["csrftoken"]
    answer = client.post(
        base + "/accounts/login/",
        data={"login": "rita", "password": PASSWORD, "csrfmiddlewaretoken": csrf.value},
        headers={**headers, "Origin": origin, "Referer": origin + "/accounts/login/",
                 "Cookie": f"csrftoken={csrf.value}"},
    )
    return form, answer


def test_behind_a_tls_proxy_cookies_are_secure_hsts_is_sent_and_plain_http_is_redirected(gunicorn):
    UserFactory(username="rita")
    # gunicorn itself trusts X-Forwarded-Proto from 127.0.0.1; here it trusts no one, so
    # what is seen is Django honouring SECURE_PROXY_SSL_HEADER.
    base = gunicorn("--forwarded-allow-ips", "192.0.2.1", **PRODUCTION)
    host = {"Host": SITE}
    proxied = {**host, "X-Forwarded-Proto": "https"}
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        plain = client.get(base + "/incidents/?status=triggered", headers=host)
        assert plain.status_code == 301
        assert plain.headers["location"] == f"https://{SITE}/incidents/?status=triggered"
        assert "strict-transport-security" not in plain.headers  # HSTS only over HTTPS, as the RFC says
        # Probes reach the process directly, over HTTP.
        assert client.get(base + "/healthz", headers=host).status_code == 200

        form, signed_in = sign_in(client, base, proxied, f"https://{SITE}")
        assert form.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"
        csrf = cookies_of(form)["csrftoken"]
        assert csrf["secure"] is True
        policy = form.headers["content-security-policy"]
        assert f"wss://{SITE}" in policy and "upgrade-insecure-requests" in policy

        assert signed_in.status_code == 302, signed_in.text
        session = cookies_of(signed_in)["sessionid"]
        assert (session["secure"], session["httponly"]) == (True, True)
        portal = client.get(base + "/incidents/", headers={**proxied, "Cookie": f"sessionid={session.value}"})
        assert portal.status_code == 200
        assert portal.headers["strict-transport-security"].startswith("max-age=31536000")


def test_the_proxy_header_is_only_trusted_when_the_environment_names_it(gunicorn):
    base = gunicorn("--forwarded-allow-ips", "192.0.2.1", **PRODUCTION, SECURE_PROXY_SSL_HEADER="")
    forged = httpx.get(base + "/accounts/login/", headers={"Host": SITE, "X-Forwarded-Proto": "https"})
    assert forged.status_code == 301  # still plain HTTP to Django: redirected, no HSTS
    assert "strict-transport-security" not in forged.headers

    # Another proxy's header, by its HTTP name.
    base = gunicorn("--forwarded-allow-ips", "192.0.2.1", **PRODUCTION, SECURE_PROXY_SSL_HEADER="X-Forwarded-Scheme,https")
    assert httpx.get(base + "/accounts/login/", headers={"Host": SITE, "X-Forwarded-Proto": "https"}).status_code == 301
    secure = httpx.get(base + "/accounts/login/", headers={"Host": SITE, "X-Forwarded-Scheme": "https"})
    assert secure.status_code == 200 and "strict-transport-security" in secure.headers


def test_make_runs_plain_http_on_localhost_keeps_working_with_debug_off(gunicorn):
    UserFactory(username="rita")
    port_env = {"DEBUG": "false", "WEBSOCKET_PORT": "8765"}  # as devstack.run_portal sets them
    base = gunicorn(**port_env, SITE_URL="http://127.0.0.1:8000")
    with httpx.Client(follow_redirects=False, timeout=10) as client:
        form, signed_in = sign_in(client, base, {}, base)
        assert form.status_code == 200 and "strict-transport-security" not in form.headers
        assert cookies_of(form)["csrftoken"]["secure"] == ""
        assert signed_in.status_code == 302, signed_in.text
        session = cookies_of(signed_in)["sessionid"]
        assert session["secure"] == "" and session["httponly"] is True
        portal = client.get(base + "/incidents/", headers={"Cookie": f"sessionid={session.value}"})
        assert portal.status_code == 200
        # The page's websocket goes to the ASGI tier's port: the policy lets it.
        assert "connect-src 'self' ws://127.0.0.1:8765" in portal.headers["content-security-policy"]


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


@pytest.mark.django_db
def test_portal_api_and_admin_answer_under_a_policy_without_inline_code(client, settings):
    admin = UserFactory(username="root", is_staff=True, is_superuser=True)
    client.force_login(admin)
    for path in ("/incidents/", "/admin/", "/admin/integrations/integration/add/", "/accounts/login/",
                 "/api/v1/incidents/"):
        policy = directives(client.get(path).headers["Content-Security-Policy"])
        assert policy["default-src"] == ["'self'"]
        assert policy["script-src"] == ["'self'"], path  # no nonce where no page asked for one
        assert policy["style-src"] == ["'self'"]
        assert policy["object-src"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
        assert policy["connect-src"] == ["'self'", "ws://testserver"]
        assert not any("unsafe" in value for values in policy.values() for value in values), path

    settings.WEBSOCKET_PORT = "9001"
    settings.ALLOWED_HOSTS = ["localhost", "[::1]"]
    policy = directives(client.get("/incidents/", HTTP_HOST="localhost:8000").headers["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", "ws://localhost:9001"]
    policy = directives(client.get("/incidents/", HTTP_HOST="[::1]:8000").headers["Content-Security-Policy"])
    assert policy["connect-src"] == ["'self'", "ws://[::1]:9001"]


TEMPLATES = ROOT / "templates"
INLINE_CODE = {
    "inline script": re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*type=\"application/json\")[^>]*>", re.I),
    "event handler attribute": re.compile(r"\son[a-z]+\s*=", re.I),
    "hx-on attribute (eval)": re.compile(r"\shx-on[:-]", re.I),
    "style attribute": re.compile(r"\sstyle\s*=", re.I),
    "<style> element": re.compile(r"<style\b", re.I),
    "javascript: URL": re.compile(r"javascript:", re.I),
}


def test_no_template_or_script_of_ours_needs_inline_code():
    offences = []
    for path in TEMPLATES.rglob("*.html"):
        if "notifications/email" in path.as_posix():
            continue  # mail, read in mail clients, never under our policy
        text = path.read_text()
        offences += [f"{path.relative_to(ROOT)}: {what}" for what, pattern in INLINE_CODE.items() if pattern.search(text)]
    for path in (ROOT / "static").rglob("*.js"):
        text = path.read_text()
        if re.search(r"\beval\(|new Function\(|setAttribute\(\s*[\"']on|\.innerHTML\s*=", text):
            offences.append(f"{path.relative_to(ROOT)}: code from strings or markup")
    assert offences == []


def nginx_log_map() -> list[tuple[re.Pattern, str]]:
    """deploy/nginx.conf's `map $request_uri $im_log_path`, as Python regular expressions."""
    block = re.search(r"map \$request_uri \$im_log_path \{(.*?)\n\}", NGINX_CONF.read_text(), re.S).group(1)
    rules = []
    for line in block.strip().splitlines():
        regex, value = re.fullmatch(r'\s*"~(.+)"\s+"(.*)";', line).groups()
        rules.append((re.compile(regex.replace("(?<", "(?P<")), value))
    return rules


def logged_path(request_uri: str) -> str:
    for regex, value in nginx_log_map():
        if match := regex.match(request_uri):
            return re.sub(r"\$\{(\w+)\}", lambda m: match.group(m.group(1)), value)
    return request_uri


def routes(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLPattern):
            yield prefix + str(p.pattern)
        else:
            yield from routes(p.url_patterns, prefix + str(p.pattern))


def test_nginx_logs_every_url_of_ours_that_holds_a_token_masked_and_no_query_string():
    secret = "S3CRETt0ken" + secrets.token_hex(8)

    def sample(match: re.Match) -> str:
        converter, name = match.groups()
        return secret if name == "token" else ("7" if converter == "int" else "alertmanager")

    with_token = ["/" + re.sub(r"<(?:(\w+):)?(\w+)>", sample, route) for route in routes(urlpatterns) if "<str:token>" in route]
    assert {"/api/v1/ingest/S/alertmanager", "/api/v1/heartbeat/S", "/integrations/slack/link/S",
            "/ical/schedule/S.ics", "/ical/user/S.ics"} <= {path.replace(secret, "S") for path in with_token}
    for path in with_token:
        for uri in (path, path + "?api_key=QS3CRET", "/" + path):
            logged = logged_path(uri)
            assert secret not in logged and "QS3CRET" not in logged, uri
            assert "[token]" in logged
    assert logged_path("/api/v1/ingest/alertmanager?token=QS3CRET") == "/api/v1/ingest/alertmanager"
    assert logged_path("/incidents/12/?status=open") == "/incidents/12/"
    assert logged_path("/ical/user/abc.ics") == "/ical/user/[token].ics"

    text = NGINX_CONF.read_text()
    for line in re.findall(r"log_format [^;]+;", text, re.S):
        assert not re.search(r"\$(request|request_uri|args|query_string|http_referer|http_authorization)\b", line)
    assert re.findall(r"access_log \S+ (\S+);", text) == ["im_no_tokens", "im_no_tokens"]


NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
needs_nginx = pytest.mark.skipif(NGINX is None, reason="nginx is not installed (make test installs nginx-light where it can)")


def nginx_config(tmp_path: Path, http_port: int, https_port: int, web_port: int, ws_port: int) -> Path:
    """deploy/nginx.conf with this test's ports, a throwaway certificate and log folder, in
    a main configuration of its own."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", SITE)
    cert.private_key_pem.write_to_path(tmp_path / "privkey.pem")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "fullchain.pem")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    site = NGINX_CONF.read_text()
    for old, new in (
        ("listen 80;", f"listen 127.0.0.1:{http_port};"),
        ("listen 443 ssl", f"listen 127.0.0.1:{https_port} ssl"),
        ("127.0.0.1:8000", f"127.0.0.1:{web_port}"),
        ("127.0.0.1:8001", f"127.0.0.1:{ws_port}"),
        ("/etc/nginx/tls/incident-manager/", f"{tmp_path}/"),
        ("/var/log/nginx/", f"{tmp_path}/"),
        ("/var/www/acme", f"{tmp_path}/acme"),
    ):
        assert old in site, old
        site = site.replace(old, new)
    (tmp_path / "site.conf").write_text(site)
    temp = "".join(f"{kind}_temp_path {tmp_path}/{kind};\n" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    main = tmp_path / "nginx.conf"
    main.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")  # workers write its temp files in tmp_path
        + f"worker_processes 1;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/main-error.log;\n"
        + "events { worker_connections 64; }\n"
        + f"http {{\n{temp}access_log off;\ninclude {tmp_path}/site.conf;\n}}\n"
    )
    return main


@needs_nginx
def test_nginx_accepts_the_deployment_configuration(tmp_path):
    main = nginx_config(tmp_path, free_port(), free_port(), 8000, 8001)
    result = subprocess.run([NGINX, "-t", "-p", str(tmp_path), "-c", str(main)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "syntax is ok" in result.stderr


@needs_nginx
def test_through_nginx_tls_redirects_websockets_and_an_access_log_without_tokens(gunicorn, monkeypatch, tmp_path, service):
    import ssl

    from websockets.sync.client import connect

    UserFactory(username="rita")
    _, token = create_integration(name="am", kind="alertmanager", service=service)
    http_port, https_port = free_port(), free_port()
    site = f"https://127.0.0.1:{https_port}"
    web = gunicorn(**PRODUCTION, CSRF_TRUSTED_ORIGINS=site)
    with serve_asgi(monkeypatch) as ws_port:
        main = nginx_config(tmp_path, http_port, https_port, urlsplit(web).port, ws_port)
        proxy = subprocess.Popen([NGINX, "-p", str(tmp_path), "-c", str(main), "-g", "daemon off;"],
                                 stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", https_port), timeout=1).close()
                    break
                except OSError:
                    assert proxy.poll() is None, proxy.stderr.read().decode()
                    assert time.monotonic() < deadline, "nginx did not start"
                    time.sleep(0.1)
            trust = ssl.create_default_context(cafile=str(tmp_path / "ca.pem"))
            with httpx.Client(verify=trust, follow_redirects=False, timeout=10) as client:
                redirect = client.get(f"http://127.0.0.1:{http_port}/incidents/?status=open")
                assert redirect.status_code == 301
                assert redirect.headers["location"] == "https://127.0.0.1/incidents/?status=open"

                form, signed_in = sign_in(client, site, {}, site)
                # X-Forwarded-Proto made it through: Django answers as HTTPS.
                assert form.headers["strict-transport-security"].startswith("max-age=31536000")
                assert cookies_of(form)["csrftoken"]["secure"] is True
                assert signed_in.status_code == 302, signed_in.text
                session = cookies_of(signed_in)["sessionid"].value

                # A sender with its token in the path, and one more in a query string.
                path = urlsplit(ingestion_url(token, "alertmanager")).path
                sent = client.post(site + path + "?api_key=QUERYSECRET", json=load_fixture("alertmanager_webhook_v4_firing.json"))
                assert sent.status_code == 202, sent.text
                client.get(f"http://127.0.0.1:{http_port}/api/v1/heartbeat/{token}")
                client.get(f"{site}/ical/user/{token}.ics")

            # The websocket tier behind the same address, with the session of the HTTP tier.
            with connect(f"wss://127.0.0.1:{https_port}/ws/incidents/", ssl=trust, open_timeout=10,
                         additional_headers={"Cookie": f"sessionid={session}", "Origin": site}) as socket_:
                assert socket_.protocol.state.name == "OPEN"
        finally:
            proxy.send_signal(signal.SIGQUIT)  # graceful: writes and closes its logs
            proxy.wait(timeout=15)
    log = (tmp_path / "incident-manager.access.log").read_text()
    assert "/api/v1/ingest/[token]/alertmanager" in log and "/api/v1/heartbeat/[token]" in log
    assert "/ical/user/[token].ics" in log and '"GET /ws/incidents/ HTTP/1.1" 101' in log
    assert token not in log and "QUERYSECRET" not in log and session not in log
    assert token not in (tmp_path / "incident-manager.error.log").read_text()
