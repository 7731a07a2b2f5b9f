"""Statements on the ingest path, prepared on the server.

Django binds parameters on the client, so PostgreSQL parses and plans every
statement it is sent anew; for the few statements every alert goes through
(apps/incidents/ingest.py, dedup.lock_keys) that costs more than running them.
Statements run here bypass Django's cursor wrappers (they are not in
connection.queries), but their errors are Django's database exceptions.
"""

import psycopg
from django.db import connection
from django.db.backends.signals import connection_created
from django.dispatch import receiver


def run(sql: str, params) -> list[tuple]:
    """Run `sql` as a prepared statement on Django's connection (in its transaction,
    if any) and return its rows."""
    connection.ensure_connection()
    # psycopg.Cursor, not the connection's default: Django makes that a ClientCursor,
    # which never prepares.
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


@receiver(connection_created)
def _generic_plans(sender, connection, **kwargs):
    """Left to itself, PostgreSQL keeps planning these statements afresh when their
    generic plan's estimate (100 rows from any JSON document) looks costlier than
    the plans for the documents it has seen: a plan per request after all.  Set as
    the connection opens, in autocommit: a SET in a transaction that rolls back
    is undone.  (The ORM's statements are never prepared: this does not touch them.)"""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")
