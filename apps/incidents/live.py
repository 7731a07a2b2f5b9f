"""Live updates: tell every open portal page that an incident changed.

Messages go through the Channels layer (Redis), so a change made in any process,
web or Celery worker, reaches the websocket consumers in the ASGI process.
"""

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

LIST_GROUP = "incidents"


def incident_group(incident_id: int) -> str:
    return f"incident-{incident_id}"


def publish_incident_changed(incident_id: int, *, created: bool = False) -> None:
    layer = get_channel_layer()
    message = {"type": "incident.changed", "id": incident_id, "created": created}
    async_to_sync(_send)(layer, [LIST_GROUP, incident_group(incident_id)], message)


async def _send(layer, groups, message):
    for group in groups:
        await layer.group_send(group, message)
