from django.apps import AppConfig


class AssistConfig(AppConfig):
    """Responder assistance: LLM summaries, runbooks, similar past incidents, postmortems."""

    name = "apps.assist"
    label = "assist"
