"""Live log of one node of a training job: backlog, then every line, metric and status as it comes.

The consumer authorises through the job page's own accessor, joins the node's run-engine group
(`runtime.run.<run id>`) first and reads the backlog second, so no line is lost in between
(viewers drop lines they already have by their sequence number).
"""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.http import Http404

from apps.core.consumers import DENIED_CLOSE_CODE

# Lines sent on connect: the latest part of the log (the page links the full log for more).
BACKLOG_LINES = 2000


def _node(user, pk, rank):
    from .selectors import job_runs, training_job_get_for_user

    job = training_job_get_for_user(user, pk)
    run = next((r for r in job_runs(job) if r.node_rank == rank), None)
    if run is None:
        raise Http404("No such node.")
    return run


def _backlog(run) -> list[dict]:
    """The latest log lines and every metric point so far (charts start complete, then grow live)."""
    from apps.runtime.logstream import log_read
    from apps.runtime.models import Metric

    part = log_read(run, after=None, limit=BACKLOG_LINES)
    points = [{"name": n, "step": s, "value": v} for n, s, v in
              Metric.objects.filter(run=run).order_by("name", "step", "id").values_list("name", "step", "value")]
    return [{"kind": "log", "first": part.first, "lines": part.lines, "backlog": True, "total": part.total},
            {"kind": "metric", "points": points, "backlog": True}]


class NodeLogConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        kwargs = self.scope["url_route"]["kwargs"]
        try:
            if user is None or not user.is_authenticated:
                raise Http404
            run = await database_sync_to_async(_node)(user, kwargs["pk"], int(kwargs["rank"]))
        except Http404:
            await self.accept()
            await self.close(code=DENIED_CLOSE_CODE)
            return
        self.group = run.group_channel
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        for payload in await database_sync_to_async(_backlog)(run):
            await self.send_json(payload)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def publish(self, message):
        await self.send_json(message["payload"])
