from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from apps.accounts import roles

from . import live, selectors


class IncidentStreamConsumer(AsyncJsonWebsocketConsumer):
    """Pushes {"event": "incident.changed", "id": …} to signed-in portal pages.

    /ws/incidents/ follows the incidents of the viewer's teams (an organisation
    admin's, every team's), /ws/incidents/<id>/ just one the viewer may see.  The
    page then re-fetches the part it shows, through the ordinary (permission-checked)
    views.  Teams are read when the socket opens; the page reconnects on reload.
    """

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=4401)
            return
        incident_id = self.scope["url_route"]["kwargs"].get("incident_id")
        if incident_id:
            if not await database_sync_to_async(self._may_see)(user, int(incident_id)):
                await self.close(code=4403)
                return
            self.groups_joined = [live.incident_group(incident_id)]
        else:
            teams = await database_sync_to_async(roles.team_ids)(user)
            if teams is roles.EVERY_TEAM:
                self.groups_joined = [live.EVERY_TEAM_GROUP]
            else:
                self.groups_joined = [live.team_group(team_id) for team_id in sorted(teams)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()

    @staticmethod
    def _may_see(user, incident_id: int) -> bool:
        return selectors.visible(user).filter(pk=incident_id).exists()

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def incident_changed(self, event):
        await self.send_json({"event": "incident.changed", "id": event["id"], "created": event["created"]})
