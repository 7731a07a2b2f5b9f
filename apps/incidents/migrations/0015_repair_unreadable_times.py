"""Repair times that a sender put out of reach (issue 15).

An alert's startsAt of 9999-12-31T23:59:59-14:00 was stored as year 10000, which
PostgreSQL keeps and Python cannot read: from then on every page, API answer or task
that loaded the alert failed.  The parsers now record such times as unknown; this
repairs rows stored before, in SQL (Python could not read them to decide).  Times
outside 1970..2200 are taken as bad: alerts' starts_at becomes unknown (NULL), and
incidents' first and last alert times (never sender times, checked all the same)
become the incident's creation time.  Nothing to undo.
"""

from django.db import migrations

IN_RANGE = "BETWEEN '1970-01-01 00:00:00+00' AND '2200-01-01 00:00:00+00'"

REPAIR = f"""
UPDATE incidents_alert SET starts_at = NULL WHERE starts_at NOT {IN_RANGE};
UPDATE incidents_incident SET first_alert_at = created_at WHERE first_alert_at NOT {IN_RANGE};
UPDATE incidents_incident SET last_alert_at = created_at WHERE last_alert_at NOT {IN_RANGE};
"""


class Migration(migrations.Migration):

    dependencies = [
        ("incidents", "0014_routes_identity_and_severity_source"),
    ]

    operations = [migrations.RunSQL(REPAIR, reverse_sql=migrations.RunSQL.noop)]
