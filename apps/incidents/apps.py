from django.apps import AppConfig


class IncidentsConfig(AppConfig):
    name = "apps.incidents"
    label = "incidents"

    def ready(self):
        # Connects the receivers that reload admins' rules when one is saved.
        from . import classification_rules  # noqa: F401
