"""Set-based inserts: one statement with one array parameter per column.

Django's bulk_create sends one placeholder per value and bulk_update builds a
CASE expression per row; at 500 states x 3 channels that compiles and converts
tens of thousands of placeholders and was most of an escalation tick's time
(bench/escalation.py).  With unnest() the statement stays the same size whatever
the batch.

`insert` reads the columns from the model, so a field added to a model is written
like bulk_create would write it.
"""

from django.db import connection
from django.db.models.expressions import DatabaseDefault


def insert(model, objs, *, ignore_conflicts: bool = False) -> None:
    if not objs:
        return
    # Fields left to the database (db_default) are left out, as bulk_create does.
    fields = [
        f
        for f in model._meta.concrete_fields
        if not f.primary_key and not isinstance(getattr(objs[0], f.attname), DatabaseDefault)
    ]
    columns, types, arrays = [], [], []
    for f in fields:
        columns.append(connection.ops.quote_name(f.column))
        types.append(f.db_type(connection))
        arrays.append([f.get_db_prep_save(f.pre_save(obj, True), connection) for obj in objs])
    sql = (
        f"INSERT INTO {connection.ops.quote_name(model._meta.db_table)} ({', '.join(columns)}) "
        f"SELECT * FROM unnest({', '.join(f'%s::{t}[]' for t in types)})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else "")
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
