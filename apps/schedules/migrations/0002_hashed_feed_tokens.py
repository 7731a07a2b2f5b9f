"""iCal feed secrets are kept as their SHA-256 digest; the URLs already given out keep working."""

from django.db import migrations, models

from apps.accounts.tokens import digest


def hash_tokens(apps, schema_editor):
    for model, field in ((apps.get_model("schedules", "Schedule"), "feed_token_hash"),
                         (apps.get_model("schedules", "CalendarFeed"), "token_hash")):
        for pk, token in model.objects.values_list("pk", field):
            if token:
                model.objects.filter(pk=pk).update(**{field: digest(token)})


class Migration(migrations.Migration):
    dependencies = [("schedules", "0001_initial")]

    operations = [
        migrations.RenameField("schedule", "feed_token", "feed_token_hash"),
        migrations.AlterField(
            "schedule", "feed_token_hash",
            models.CharField(max_length=64, unique=True, null=True, blank=True, editable=False),
        ),
        migrations.RenameField("calendarfeed", "token", "token_hash"),
        migrations.AlterField("calendarfeed", "token_hash", models.CharField(max_length=64, unique=True, editable=False)),
        migrations.RunPython(hash_tokens, migrations.RunPython.noop),
    ]
