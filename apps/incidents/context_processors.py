from django.conf import settings


def portal(request):
    return {"websocket_port": settings.WEBSOCKET_PORT}
