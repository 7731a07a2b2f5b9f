from pathlib import Path

from django.db import migrations, models

# The repeats function stores Alert.route too (apps/incidents/sql/append_repeats.sql).
APPEND_REPEATS = (Path(__file__).resolve().parent.parent / "sql" / "append_repeats.sql").read_text()


def severity_sources(apps, schema_editor):
    """Incidents whose severity a person or the LLM changed say so; the others keep
    "sender", which is where their severity came from before the classifier's could page."""
    Incident = apps.get_model("incidents", "Incident")
    AuditEntry = apps.get_model("audit", "AuditEntry")
    changes = AuditEntry.objects.filter(verb="incident.severity_changed").order_by("incident_id", "-at")
    latest = {}
    for incident_id, by in changes.values_list("incident_id", "data__by"):
        latest.setdefault(incident_id, by)
    for source in ("llm", "person"):
        chosen = [pk for pk, by in latest.items() if (by == "llm") == (source == "llm")]
        Incident.objects.filter(pk__in=chosen).update(severity_source=source)


class Migration(migrations.Migration):

    dependencies = [
        ('incidents', '0013_append_repeats_function'),
        ('audit', '0003_append_only'),
    ]

    operations = [
        migrations.AddField(
            model_name='alert',
            name='route',
            field=models.CharField(blank=True, db_default='', default='', max_length=300),
        ),
        migrations.AddField(
            model_name='incident',
            name='severity_source',
            field=models.CharField(choices=[('sender', 'Sender'), ('rules', 'rule-based classifier'), ('llm', 'LLM classifier'), ('person', 'Person')], db_default='sender', default='sender', max_length=8),
        ),
        migrations.AddField(
            model_name='service',
            name='identifying_labels',
            field=models.JSONField(blank=True, help_text='Labels on which two alerts must not disagree to share an incident by grouping or similarity (apps/incidents/identity.py), e.g. ["service", "cluster"]. Empty: service, cluster, env, environment, namespace, region, tenant and the grouping rules\' labels other than alertname.', null=True),
        ),
        migrations.AddField(
            model_name='service',
            name='is_active',
            field=models.BooleanField(default=True, help_text='Disabled: integration routes naming it send their alerts to their default service.'),
        ),
        migrations.RunSQL(APPEND_REPEATS, migrations.RunSQL.noop),
        migrations.RunPython(severity_sources, migrations.RunPython.noop),
    ]
