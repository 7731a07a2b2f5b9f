from django.conf import settings

from .triage import llm_status


def portal(request):
    return {"websocket_port": settings.WEBSOCKET_PORT, "llm_status": llm_status}
