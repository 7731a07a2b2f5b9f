from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"

    def ready(self):
        # Connect the receivers that tell every process to reload its copies of
        # admins' rows (versioned_copy), whichever code the process runs:
        # a change saved from a shell must reach the web workers too.
        from . import classification_rules, service_settings  # noqa: F401
        # And the one that sets up each new database connection for ingest's
        # prepared statements.
        from . import prepared  # noqa: F401
