"""Presence on a sample: who else has it open in a workbench (anchors §5 item 9).

The socket joins `labeling.sample.<id>`, the group the services publish saves to, so an open
workbench also learns at once that someone saved. Presence needs no storage: a newcomer
announces itself, everyone already there answers it directly, and a closing socket says
goodbye. Authorisation uses the page's own accessors (another workspace's sample: refused).
"""
from __future__ import annotations

import hashlib

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.core.consumers import DENIED_CLOSE_CODE
from apps.core.permissions import require_perm

from . import selectors


def _authorise(user, job_pk, sample_pk) -> str:
    job = selectors.job_get_for_user(user, job_pk)
    require_perm(user, job.workspace, "labeling:view")
    return selectors.sample_get(job, sample_pk).pk


class PresenceConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        if user is None or not user.is_authenticated:
            await self._refuse()
            return
        try:
            sample = await database_sync_to_async(_authorise)(user, kwargs["job"], kwargs["sample"])
        except (Http404, PermissionDenied):
            await self._refuse()
            return
        self.group = f"labeling.sample.{sample}"
        self.who = user.get_username()
        # An opaque id per socket: the same person in two tabs counts twice, and channel names stay private.
        self.tag = hashlib.sha256(self.channel_name.encode()).hexdigest()[:12]
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send_json({"kind": "presence", "event": "self", "id": self.tag, "user": self.who})
        await self.channel_layer.group_send(self.group, {"type": "presence.join", "user": self.who, "id": self.tag,
                                                         "reply_to": self.channel_name})

    async def _refuse(self):
        await self.accept()
        await self.close(code=DENIED_CLOSE_CODE)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_send(self.group, {"type": "presence.leave", "user": self.who, "id": self.tag})
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        """Browsers only listen; anything they send is ignored."""

    async def presence_join(self, message):
        if message["id"] == self.tag:
            return
        await self.send_json({"kind": "presence", "event": "join", "id": message["id"], "user": message["user"]})
        await self.channel_layer.send(message["reply_to"], {"type": "presence.here", "user": self.who, "id": self.tag})

    async def presence_here(self, message):
        await self.send_json({"kind": "presence", "event": "here", "id": message["id"], "user": message["user"]})

    async def presence_leave(self, message):
        if message["id"] != self.tag:
            await self.send_json({"kind": "presence", "event": "leave", "id": message["id"], "user": message["user"]})

    async def publish(self, message):
        await self.send_json(message["payload"])
