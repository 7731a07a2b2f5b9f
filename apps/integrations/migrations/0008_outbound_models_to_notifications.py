from django.db import migrations, models


class Migration(migrations.Migration):
    """The outbound models now belong to the notifications app, which keeps their
    tables: removed from this app's state only."""

    dependencies = [
        ('integrations', '0007_notification_external_status'),
        ('notifications', '0001_initial'),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.RemoveField(
                    model_name='notification',
                    name='fallback_of',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='incident',
                ),
                migrations.RemoveField(
                    model_name='notification',
                    name='recipient',
                ),
                migrations.RemoveField(
                    model_name='notificationrule',
                    name='user',
                ),
                migrations.RemoveField(
                    model_name='slackchannellink',
                    name='service',
                ),
                migrations.RemoveField(
                    model_name='slackchannellink',
                    name='workspace',
                ),
                migrations.RemoveField(
                    model_name='slackmessage',
                    name='incident',
                ),
                migrations.RemoveField(
                    model_name='slackmessage',
                    name='workspace',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='service',
                ),
                migrations.RemoveField(
                    model_name='webhookendpoint',
                    name='team',
                ),
                migrations.DeleteModel(
                    name='ContactMethod',
                ),
                migrations.DeleteModel(
                    name='Notification',
                ),
                migrations.DeleteModel(
                    name='NotificationRule',
                ),
                migrations.DeleteModel(
                    name='SlackChannelLink',
                ),
                migrations.DeleteModel(
                    name='SlackMessage',
                ),
                migrations.DeleteModel(
                    name='SlackWorkspace',
                ),
                migrations.DeleteModel(
                    name='WebhookEndpoint',
                ),
            ],
            database_operations=[],
        ),
        migrations.AlterField(
            model_name='integration',
            name='signing_secret',
            field=models.TextField(blank=True, editable=False, help_text='Sealed (apps/accounts/sealed.py).'),
        ),
    ]
