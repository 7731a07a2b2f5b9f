"""Statements on the ingest path, prepared on the server.

Django binds parameters on the client, so PostgreSQL parses and plans every
statement it is sent anew; for the few statements every alert goes through
(apps/incidents/ingest.py, dedup.lock_keys) that costs more than running them.
Statements run here bypass Django's cursor wrappers (they are not in
connection.queries), but their errors are Django's database exceptions.
"""

import weakref

import psycopg
from django.db import connection


def run(sql: str, params) -> list[tuple]:
    """Run `sql` as a prepared statement on Django's connection (in its transaction,
    if any) and return its rows."""
    connection.ensure_connection()
    conn = connection.connection
    # psycopg.Cursor, not the connection's default: Django makes that a ClientCursor.
    with connection.wrap_database_errors, psycopg.Cursor(conn) as cursor:
        if conn not in _generic_plans:
            # Left to itself, PostgreSQL keeps planning these afresh when their generic
            # plan's estimate (100 rows from any JSON document) looks costlier than the
            # plans for the documents it has seen: a plan per request after all.
            cursor.execute("SET plan_cache_mode = force_generic_plan")
            _generic_plans.add(conn)
        cursor.execute(sql, params, prepare=True)
        return cursor.fetchall()


_generic_plans: "weakref.WeakSet[psycopg.Connection]" = weakref.WeakSet()
