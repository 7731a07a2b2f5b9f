from django.db import migrations


class Migration(migrations.Migration):
    """Keep the embedding (1.5 kB) out of the incident's row.

    Each alert's count update writes a new version of its incident's row.  pgvector
    lets PostgreSQL move a vector out of line, but PostgreSQL only does so for rows
    over toast_tuple_target (about 2 kB by default), and an incident with its
    embedding stayed just under it.  Without the embedding the row is a few hundred
    bytes: cheaper versions, and more of them fit on a page for the in-place (HOT)
    updates of 0010.  The embedding is read only when a new incident is compared
    with the open ones.
    """

    dependencies = [("incidents", "0011_leaner_alert_and_key_indexes")]

    operations = [
        migrations.RunSQL(
            "ALTER TABLE incidents_incident SET (toast_tuple_target = 256)",
            "ALTER TABLE incidents_incident RESET (toast_tuple_target)",
        ),
    ]
