from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    label = "escalation"

    def ready(self):
        from . import receivers  # noqa: F401  (connects them)
