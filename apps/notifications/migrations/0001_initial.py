import django.contrib.postgres.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


MOVED = ["notification", "slackworkspace", "slackchannellink", "slackmessage", "contactmethod", "notificationrule", "webhookendpoint"]


def move_content_types(apps, schema_editor):
    """Admin permissions and log entries follow the models to their new app."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="integrations", model__in=MOVED).update(app_label="notifications")


def move_content_types_back(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="notifications", model__in=MOVED).update(app_label="integrations")


class Migration(migrations.Migration):
    """The outbound models move here from integrations with their tables (db_table):
    the database is not touched, only Django's idea of which app holds them."""

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        ('integrations', '0007_notification_external_status'),
        ('accounts', '0001_initial'),
        ('incidents', '0013_append_repeats_function'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name='SlackWorkspace',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('team_id', models.CharField(help_text="Slack's team id, T…", max_length=32, unique=True)),
                        ('name', models.CharField(max_length=100)),
                        ('bot_token_sealed', models.TextField(editable=False)),
                        ('signing_secret_sealed', models.TextField(editable=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                    ],
                    options={
                        'db_table': 'integrations_slackworkspace',
                    },
                ),
                migrations.CreateModel(
                    name='NotificationRule',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('severities', django.contrib.postgres.fields.ArrayField(base_field=models.CharField(max_length=16), blank=True, default=list, help_text='Empty: any severity.', size=None)),
                        ('kind', models.CharField(choices=[('slack', 'Slack'), ('email', 'Email'), ('sms', 'Sms'), ('voice', 'Voice')], max_length=16)),
                        ('delay_minutes', models.PositiveIntegerField(default=0)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notification_rules', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'integrations_notificationrule',
                        'ordering': ['user', 'delay_minutes', 'id'],
                    },
                ),
                migrations.CreateModel(
                    name='WebhookEndpoint',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('name', models.CharField(max_length=100)),
                        ('url', models.URLField(max_length=1000)),
                        ('secret_sealed', models.TextField(editable=False)),
                        ('is_active', models.BooleanField(default=True)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('service', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to='incidents.service')),
                        ('team', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='webhooks', to='accounts.team')),
                    ],
                    options={
                        'db_table': 'integrations_webhookendpoint',
                    },
                ),
                migrations.CreateModel(
                    name='ContactMethod',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('kind', models.CharField(choices=[('slack', 'Slack'), ('email', 'Email'), ('sms', 'Sms'), ('voice', 'Voice')], max_length=16)),
                        ('address', models.CharField(help_text='E-mail, E.164 phone number (+4915…), or Slack user id (U…)', max_length=255)),
                        ('verified', models.BooleanField(default=False)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('user', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='contact_methods', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'integrations_contactmethod',
                        'constraints': [models.UniqueConstraint(fields=('kind', 'address'), name='one_owner_per_contact')],
                    },
                ),
                migrations.CreateModel(
                    name='Notification',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('target', models.CharField(blank=True, max_length=255)),
                        ('channel', models.CharField(choices=[('slack', 'Slack'), ('email', 'Email'), ('sms', 'Sms'), ('voice', 'Voice'), ('webhook', 'Webhook')], max_length=16)),
                        ('idempotency_key', models.CharField(max_length=255, unique=True)),
                        ('status', models.CharField(choices=[('pending', 'Pending'), ('delivered', 'Delivered'), ('failed', 'Failed'), ('suppressed', 'Suppressed')], default='pending', max_length=16)),
                        ('reason', models.JSONField(blank=True, default=dict, help_text='Why this was sent: rule, level, schedule, override.')),
                        ('attempts', models.PositiveSmallIntegerField(default=0)),
                        ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                        ('last_error', models.TextField(blank=True)),
                        ('delivered_at', models.DateTimeField(blank=True, null=True)),
                        ('external_id', models.CharField(blank=True, help_text='Slack ts, Twilio SID, Message-ID…', max_length=255)),
                        ('external_status', models.CharField(blank=True, help_text="The provider's final report: delivered, undelivered, failed, no-answer, busy…", max_length=32)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('fallback_of', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='fallbacks', to='notifications.notification')),
                        ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notifications', to='incidents.incident')),
                        ('recipient', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='notifications', to=settings.AUTH_USER_MODEL)),
                    ],
                    options={
                        'db_table': 'integrations_notification',
                        'ordering': ['created_at', 'id'],
                        'indexes': [models.Index(condition=models.Q(('status', 'pending')), fields=['next_attempt_at'], name='notification_due_idx')],
                    },
                ),
                migrations.CreateModel(
                    name='SlackMessage',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel_id', models.CharField(max_length=32)),
                        ('ts', models.CharField(blank=True, max_length=32)),
                        ('alert_count_posted', models.PositiveIntegerField(default=0)),
                        ('created_at', models.DateTimeField(auto_now_add=True)),
                        ('updated_at', models.DateTimeField(auto_now=True)),
                        ('incident', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='slack_messages', to='incidents.incident')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='notifications.slackworkspace')),
                    ],
                    options={
                        'db_table': 'integrations_slackmessage',
                        'constraints': [models.UniqueConstraint(fields=('incident', 'channel_id'), name='one_slack_message_per_incident_channel')],
                    },
                ),
                migrations.CreateModel(
                    name='SlackChannelLink',
                    fields=[
                        ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                        ('channel_id', models.CharField(help_text='C…', max_length=32)),
                        ('is_active', models.BooleanField(default=True)),
                        ('service', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='slack_channels', to='incidents.service')),
                        ('workspace', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='channels', to='notifications.slackworkspace')),
                    ],
                    options={
                        'db_table': 'integrations_slackchannellink',
                        'constraints': [models.UniqueConstraint(fields=('service', 'workspace', 'channel_id'), name='one_link_per_channel')],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(move_content_types, move_content_types_back),
    ]
