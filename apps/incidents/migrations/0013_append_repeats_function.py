from pathlib import Path

from django.db import migrations

# The function's source is apps/incidents/sql/append_repeats.sql, which says what it does.
APPEND_REPEATS = (Path(__file__).resolve().parent.parent / "sql" / "append_repeats.sql").read_text()


class Migration(migrations.Migration):
    dependencies = [("incidents", "0012_incident_embedding_out_of_line")]

    operations = [
        migrations.RunSQL(
            APPEND_REPEATS,
            "DROP FUNCTION incidents_append_repeats(bigint[], bigint, text[], jsonb, timestamptz)",
        ),
    ]
