"""Drop senders' credentials from alerts stored before the parsers left them out (issue 16).

PagerDuty's routing_key was stored with each event and shown to every viewer; the
parsers now leave out a top-level key named like a credential
(apps/integrations/parsers/credentials.py).  This applies the same rule to the rows
already stored, in SQL, touching only the rows that hold one.  The names are copied
here, not imported, so that the migration keeps meaning what it meant when written.
Nothing to undo: the keys are gone.
"""

from django.db import migrations

CREDENTIAL_NAMES = [
    "routingkey", "servicekey", "integrationkey", "apikey", "geniekey",
    "token", "accesstoken", "authtoken", "secret", "password",
]

# The payload's top-level keys that are credentials, by the parsers' rule: the name
# lower-cased and without "_" and "-".  (A payload that is not an object has none.)
CREDENTIAL_KEYS = """
    ARRAY(SELECT name FROM jsonb_object_keys(CASE WHEN jsonb_typeof(payload) = 'object' THEN payload END) AS name
          WHERE lower(translate(name, '_-', '')) = ANY(%(names)s))
"""

SCRUB = f"""
UPDATE incidents_alert SET payload = payload - {CREDENTIAL_KEYS}
WHERE cardinality({CREDENTIAL_KEYS}) > 0
"""


class Migration(migrations.Migration):

    dependencies = [
        ("incidents", "0015_repair_unreadable_times"),
    ]

    operations = [migrations.RunSQL([(SCRUB, {"names": CREDENTIAL_NAMES})], reverse_sql=migrations.RunSQL.noop)]
