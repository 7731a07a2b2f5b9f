from django.apps import AppConfig


class EscalationConfig(AppConfig):
    name = "apps.escalation"
    label = "escalation"
