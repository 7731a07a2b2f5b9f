"""The tick's update of its states in one statement (see incident_manager/bulk.py
for why not bulk_update)."""

from django.db import connection


def update_states(states, now) -> None:
    if not states:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE escalation_escalationstate AS s
               SET status = v.status, level = v.level, cycle = v.cycle, repeats_done = v.repeats_done,
                   next_at = v.next_at, updated_at = %s
              FROM unnest(%s::bigint[], %s::varchar[], %s::int[], %s::int[], %s::int[], %s::timestamptz[])
                   AS v(id, status, level, cycle, repeats_done, next_at)
             WHERE s.id = v.id
            """,
            [
                now,
                [s.pk for s in states],
                [s.status for s in states],
                [s.level for s in states],
                [s.cycle for s in states],
                [s.repeats_done for s in states],
                [s.next_at for s in states],
            ],
        )
