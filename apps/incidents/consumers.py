from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import live


class IncidentStreamConsumer(AsyncJsonWebsocketConsumer):
    """Pushes {"event": "incident.changed", "id": …} to signed-in portal pages.

    /ws/incidents/ follows every incident, /ws/incidents/<id>/ just one.  The page
    then re-fetches the part it shows, through the ordinary (permission-checked) views.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        incident_id = self.scope["url_route"]["kwargs"].get("incident_id")
        self.group = live.incident_group(incident_id) if incident_id else live.LIST_GROUP
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def incident_changed(self, event):
        await self.send_json({"event": "incident.changed", "id": event["id"], "created": event["created"]})
