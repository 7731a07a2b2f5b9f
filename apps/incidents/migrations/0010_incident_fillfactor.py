from django.db import migrations


class Migration(migrations.Migration):
    """Room on each page for the next version of an incident row.

    Every alert updates its incident's alert_count and last_alert_at.  Those columns
    are in no index, so PostgreSQL can update in place on the same page (a HOT
    update) and skip the table's eleven indexes, HNSW included, but only when the
    page has room; an incident row with its embedding takes ~2 kB.  At the default
    fillfactor (100) about half of the updates found no room (bench/ingest.py).
    """

    dependencies = [("incidents", "0009_incident_key_apart")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE incidents_incident SET (fillfactor = 50)",
            "ALTER TABLE incidents_incident RESET (fillfactor)",
        ),
    ]
