from django.apps import AppConfig


class IntegrationsConfig(AppConfig):
    name = "apps.integrations"
    label = "integrations"

    def ready(self):
        # Connect the receivers that reload the copies of integrations (versioned_copy)
        # in every process: an integration disabled from a shell must stop ingest too.
        from . import selectors  # noqa: F401
