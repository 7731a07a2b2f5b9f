"""The two-role deployment of ../docs/adr/0013: migrations run as the tables' owner,
`grant_app_role` gives the application's role what it needs, and on the audit table
INSERT and SELECT only.  Connected as that role, nothing rewrites the audit trail, not
even the trigger that guards it; the application still does all its work."""

import io
import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from psycopg import errors, sql

from .conftest import load_fixture, process_env

ROOT = Path(__file__).resolve().parent.parent


def url_for(base: str, *, user: str | None = None, password: str | None = None, dbname: str | None = None) -> str:
    parts = urlsplit(base)
    netloc = parts.netloc
    if user is not None:
        host = netloc.rsplit("@", 1)[-1]
        netloc = f"{quote(user)}:{quote(password or '')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path=f"/{dbname}" if dbname else parts.path))


def manage(*args: str, database_url: str, **env) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args], cwd=ROOT, capture_output=True, text=True, timeout=600,
        env=process_env(DATABASE_URL=database_url, **env),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="module")
def deployment():
    """A database of its own, owned by a fresh owner role and migrated by it, and a fresh
    application role granted by `grant_app_role`; all dropped afterwards."""
    base = os.environ["DATABASE_URL"]
    admin = psycopg.connect(base, autocommit=True)
    if not admin.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        admin.close()
        pytest.skip("creating roles and the vector extension needs a superuser's DATABASE_URL")
    suffix = secrets.token_hex(4)
    owner, app, dbname = f"im_owner_{suffix}", f"im_app_{suffix}", f"im_roles_{suffix}"
    password = secrets.token_urlsafe(16)
    try:
        for role in (owner, app):
            admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(role), sql.Literal(password)))
        admin.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(dbname), sql.Identifier(owner)))
        # The one step a superuser takes: pgvector is not a trusted extension.
        with psycopg.connect(url_for(base, dbname=dbname), autocommit=True) as db:
            db.execute("CREATE EXTENSION vector")
        owner_url = url_for(base, user=owner, password=password, dbname=dbname)
        app_url = url_for(base, user=app, password=password, dbname=dbname)
        manage("migrate", "--noinput", "-v", "0", database_url=owner_url)
        granted = manage("grant_app_role", app, database_url=owner_url)
        yield {"owner": owner, "app": app, "owner_url": owner_url, "app_url": app_url, "granted": granted.stdout}
    finally:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(dbname)))
        for role in (app, owner):
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
        admin.close()


def test_the_app_role_appends_and_reads_the_audit_trail_and_rewrites_nothing(deployment):
    assert "INSERT and SELECT only" in deployment["granted"]
    with psycopg.connect(deployment["app_url"], autocommit=True) as db:
        assert db.execute("SELECT current_user").fetchone()[0] == deployment["app"]
        entry = db.execute(
            "INSERT INTO audit_auditentry (at, actor_label, verb, data) VALUES (now(), 'test', 'roles.checked', '{}') RETURNING id"
        ).fetchone()[0]
        assert db.execute("SELECT verb FROM audit_auditentry WHERE id = %s", [entry]).fetchone() == ("roles.checked",)

        refused = [
            f"UPDATE audit_auditentry SET verb = 'tampered' WHERE id = {entry}",
            f"DELETE FROM audit_auditentry WHERE id = {entry}",
            "TRUNCATE audit_auditentry",
            "ALTER TABLE audit_auditentry DISABLE TRIGGER audit_entry_append_only",
            "ALTER TABLE audit_auditentry DISABLE TRIGGER ALL",
            "DROP TRIGGER audit_entry_append_only ON audit_auditentry",
            # A no-op in place of the function the trigger calls would do the same.
            "CREATE OR REPLACE FUNCTION audit_entry_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN OLD; END $$",
            "DROP TABLE audit_auditentry",
            "ALTER TABLE audit_auditentry RENAME TO audit_old",
            "SET session_replication_role = replica",  # triggers off for the session: superusers only
            f"SET ROLE {deployment['owner']}",
            "DELETE FROM django_migrations",
        ]
        for statement in refused:
            with pytest.raises(errors.InsufficientPrivilege):
                db.execute(statement)
        assert db.execute("SELECT verb FROM audit_auditentry WHERE id = %s", [entry]).fetchone() == ("roles.checked",)


# The application's work, as a process connected as the app role does it: an alert in
# through the real ingestion path (raw SQL, prepared statements, bulk audit rows), an
# acknowledgement, and an admin edit, each with its audit entries.
APP_WORK = """
import json
from urllib.parse import urlsplit
from django.contrib.auth import get_user_model
from django.db import connection
from django.test import Client
from apps.accounts.models import Membership, Team
from apps.audit.models import AuditEntry
from apps.audit.services import Actor
from apps.incidents import services
from apps.incidents.models import Incident, Service
from apps.integrations.services import create_integration, ingestion_url
from tests.admin_forms import submit

with connection.cursor() as cursor:
    cursor.execute("SELECT current_user")
    print("role", cursor.fetchone()[0])
team = Team.objects.create(name="Payments", slug="payments")
service = Service.objects.create(name="Checkout", slug="checkout", team=team)
integration, token = create_integration(name="am", kind="alertmanager", service=service)
client = Client()
response = client.post(urlsplit(ingestion_url(token, "alertmanager")).path, data=PAYLOAD, content_type="application/json")
assert response.status_code == 202, (response.status_code, response.content)
incident = Incident.objects.filter(service=service).first()
root = get_user_model().objects.create_superuser("root", "root@example.org", "x")
Membership.objects.create(team=team, user=root, role="admin")
services.acknowledge(incident, actor=Actor.of(root))
client.force_login(root)
response = submit(client, f"/admin/accounts/team/{team.pk}/change/", name="Payments and billing")
assert response.status_code == 302, response.content.decode()[:3000]
print("verbs", json.dumps(sorted(set(AuditEntry.objects.values_list("verb", flat=True)))))
"""


def test_the_app_role_does_the_applications_work(deployment):
    payload = json.dumps(load_fixture("alertmanager_webhook_v4_firing.json"))
    result = manage(
        "shell", "-c", f"PAYLOAD = {payload!r}\n{APP_WORK}", database_url=deployment["app_url"],
        ALLOWED_HOSTS="testserver,localhost",
    )
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines() if " " in line)
    assert lines["role"] == deployment["app"]
    verbs = json.loads(lines["verbs"])
    assert {"incident.triggered", "incident.acknowledged", "admin.changed"} <= set(verbs), verbs


@pytest.mark.django_db
def test_grant_app_role_refuses_roles_that_would_bind_nothing():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        me = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="owns the tables"):
        call_command("grant_app_role", me)
    with pytest.raises(CommandError, match="does not exist"):
        call_command("grant_app_role", f"im_nobody_{secrets.token_hex(4)}")
    with pytest.raises(CommandError, match="not a role name"):
        call_command("grant_app_role", "app; DROP TABLE audit_auditentry")


@pytest.mark.django_db
def test_grant_app_role_is_idempotent_and_grants_the_audit_table_insert_and_select_only():
    role = f"im_app_{secrets.token_hex(4)}"  # created in the test's transaction, gone with it
    call_command("grant_app_role", role, "--create", stdout=io.StringIO())
    call_command("grant_app_role", role, stdout=io.StringIO())
    with connection.cursor() as cursor:
        def privileges(table):
            cursor.execute(
                "SELECT array_agg(p ORDER BY p) FROM unnest(ARRAY['SELECT','INSERT','UPDATE','DELETE','TRUNCATE',"
                "'REFERENCES','TRIGGER']) p WHERE has_table_privilege(%s, %s, p)", [role, table])
            return cursor.fetchone()[0]

        assert privileges("audit_auditentry") == ["INSERT", "SELECT"]
        assert privileges("django_migrations") == ["SELECT"]
        assert privileges("incidents_incident") == ["DELETE", "INSERT", "SELECT", "UPDATE"]
        cursor.execute("SELECT has_sequence_privilege(%s, pg_get_serial_sequence('audit_auditentry', 'id'), 'USAGE')", [role])
        assert cursor.fetchone()[0]
