"""Give the application's database role what it needs, and on the audit table no more
than INSERT and SELECT (../docs/adr/0013-audit-two-role-database.md).

Run by the role that owns the tables (the one `migrate` ran as), after every `migrate`;
running it again changes nothing.  The application's processes then connect as ROLE.
"""

import re

from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from psycopg import sql

from apps.audit.models import AuditEntry

# Tables the application reads but never writes, besides the audit table.
READ_ONLY = ["django_migrations"]

GRANTS = """
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {role};
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA {schema} TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {role};
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT USAGE, SELECT ON SEQUENCES TO {role};
REVOKE ALL ON TABLE {audit} FROM {role};
GRANT SELECT, INSERT ON TABLE {audit} TO {role};
"""
READ_ONLY_GRANT = "REVOKE ALL ON TABLE {table} FROM {role}; GRANT SELECT ON TABLE {table} TO {role};"


class Command(BaseCommand):
    help = (
        "Grant the application's database role SELECT, INSERT, UPDATE, DELETE on every table but the "
        "audit trail, where it gets INSERT and SELECT only. Run as the tables' owner after migrate."
    )

    def add_arguments(self, parser):
        parser.add_argument("role", help="the role the application's processes connect as")
        parser.add_argument(
            "--create", action="store_true",
            help="create ROLE (LOGIN, no password) when it does not exist; for local use (make run)",
        )

    def handle(self, *args, role, create, **options):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$-]{0,62}", role):
            raise CommandError(f"{role!r} is not a role name")
        quote = lambda name: sql.Identifier(name).as_string(connection.connection)  # noqa: E731
        audit_table = AuditEntry._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT current_user, current_schema()")
            me, schema = cursor.fetchone()
            cursor.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", [role])
            found = cursor.fetchone()
            if found is None:
                if not create:
                    raise CommandError(f"role {role} does not exist (a DBA creates it: CREATE ROLE {role} LOGIN PASSWORD '…')")
                cursor.execute(f"CREATE ROLE {quote(role)} LOGIN")
                found = (False,)
            cursor.execute("SELECT tableowner FROM pg_tables WHERE schemaname = %s AND tablename = %s", [schema, audit_table])
            owner = cursor.fetchone()
            if owner is None:
                raise CommandError(f"{audit_table} does not exist in schema {schema}: run migrate first")
            owner = owner[0]
            if role in (me, owner):
                raise CommandError(f"{role} owns the tables: the application needs a role of its own")
            if found[0]:
                raise CommandError(f"{role} is a superuser: no privilege would bind it")
            cursor.execute("SELECT pg_has_role(%s, %s, 'MEMBER')", [role, owner])
            if cursor.fetchone()[0]:
                raise CommandError(f"{role} is a member of {owner}, the tables' owner: it could act as the owner")
            names = {"schema": quote(schema), "role": quote(role), "audit": quote(audit_table)}
            statements = GRANTS.format(**names).split(";")
            for table in READ_ONLY:
                statements += READ_ONLY_GRANT.format(table=quote(table), role=names["role"]).split(";")
            for statement in filter(str.strip, statements):
                cursor.execute(statement)
        if options["verbosity"] > 0:
            self.stdout.write(
                f"{role}: SELECT, INSERT, UPDATE, DELETE on the tables of schema {schema} (also those {me} creates "
                f"later); on {audit_table} INSERT and SELECT only; on {', '.join(READ_ONLY)} SELECT only."
            )
