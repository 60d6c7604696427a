"""Live fragments: a page element subscribes to `<app>.<model>.<pk>` and receives what services publish.

Consumers only authorise, join and forward (STYLE rule 10). Each subscribable model is
registered in `LIVE_SOURCES` with the scoped accessor that the page itself uses.
"""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

# Close code sent when a subscription is refused; static/core/live.js stops retrying on it.
DENIED_CLOSE_CODE = 4404

# "<app>.<model>" -> callable(user, pk) returning the object or raising Http404.
LIVE_SOURCES: dict[str, callable] = {}


def register_live_source(name: str, accessor) -> None:
    """Allow `/ws/live/<name>/<pk>/` subscriptions, authorised by `accessor(user, pk)`."""
    LIVE_SOURCES[name] = accessor


class LiveConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        source = self.scope["url_route"]["kwargs"]["source"]
        pk = self.scope["url_route"]["kwargs"]["pk"]
        accessor = LIVE_SOURCES.get(source)
        allowed = user is not None and user.is_authenticated and accessor is not None
        if allowed:
            try:
                await database_sync_to_async(accessor)(user, pk)
            except (Http404, PermissionDenied):
                allowed = False
        if not allowed:
            await self._refuse()
            return
        self.group = f"{source}.{pk}"
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()

    async def _refuse(self):
        # Accept, then close with 4404: a handshake refused before accept reaches the browser
        # as a bare 1006, which live.js could not tell from a network drop (and would retry).
        # Unknown source, missing object and no access all look the same (no existence hints).
        await self.accept()
        await self.close(code=DENIED_CLOSE_CODE)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def publish(self, message):
        await self.send_json(message["payload"])
