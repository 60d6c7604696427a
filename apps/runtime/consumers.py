"""The run log stream: `/ws/runtime/runs/<pk>/` sends the log backlog, then live lines, status,
events and metric points of that run.

Messages to the client (JSON):

* ``{"kind": "log", "first": <seq>, "lines": [...]}`` — consecutive lines, first one numbered
  `first`; every line arrives once and in order, backlog included;
* ``{"kind": "backlog", "first": <seq>, "total": <n>}`` — the backlog is complete; lines before
  `first` were not sent (connect with ``?after=0`` for the whole log);
* ``{"kind": "status", …}``, ``{"kind": "event", …}``, ``{"kind": "metric", "points": [{id, name, step,
  value}]}``; with ``?metric_after=<id>`` the points recorded after that id come first, then live
  points, each once.

Ordering guarantee: the consumer joins the group before reading the log file, and the worker
writes a batch to the file before publishing it, so a line is either in what was read or
arrives live; live lines already sent are dropped, and a gap (a batch the channel layer
dropped under pressure) is filled from the file.
"""
from __future__ import annotations

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.core.consumers import DENIED_CLOSE_CODE

from .logstream import log_read
from .metrics import metric_point_payload
from .selectors import run_get_for_user, run_metrics_after
from .services import run_status_payload

# Backlog lines per WebSocket message: big enough to load fast, small enough to render smoothly.
BACKLOG_CHUNK = 5000


def _int_param(query_string: bytes, name: str) -> int | None:
    from urllib.parse import parse_qs

    raw = (parse_qs(query_string.decode("latin-1")).get(name) or [None])[0]
    if raw is None or not raw.isdigit():
        return None
    return int(raw)


class RunLogConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        pk = self.scope["url_route"]["kwargs"]["pk"]
        run = None
        if user is not None and user.is_authenticated:
            try:
                run = await database_sync_to_async(run_get_for_user)(user, pk)
            except (Http404, PermissionDenied):
                run = None
        if run is None:
            # Accept then close, as the core live consumer does: the browser sees the refusal code.
            await self.accept()
            await self.close(code=DENIED_CLOSE_CODE)
            return
        self.run = run
        self.group = run.group_channel
        await self.channel_layer.group_add(self.group, self.channel_name)  # before reading: see the docstring
        await self.accept()
        query = self.scope.get("query_string", b"")
        after = _int_param(query, "after")
        backlog = await database_sync_to_async(log_read)(run, after=after)
        for start in range(0, len(backlog.lines), BACKLOG_CHUNK):
            await self.send_json({"kind": "log", "first": backlog.first + start,
                                  "lines": backlog.lines[start:start + BACKLOG_CHUNK]})
        self.last_seq = backlog.first + len(backlog.lines) - 1 if backlog.lines else max(after or 0, backlog.total)
        await self.send_json({"kind": "backlog", "first": backlog.first, "total": backlog.total})
        # Metric points after the id the page was rendered with (none when it did not say).
        self.metric_after = _int_param(query, "metric_after")
        if self.metric_after is not None:
            points = await database_sync_to_async(run_metrics_after)(run, self.metric_after)
            if points:
                self.metric_after = points[-1].pk
                await self.send_json({"kind": "metric", "points": [metric_point_payload(m) for m in points]})
        await self.send_json(await database_sync_to_async(self._status)())

    def _status(self) -> dict:
        self.run.refresh_from_db()
        return run_status_payload(self.run)

    async def disconnect(self, code):
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def publish(self, message):
        payload = message["payload"]
        if payload.get("kind") == "metric" and self.metric_after is not None:
            points = [p for p in payload["points"] if p.get("id") is None or p["id"] > self.metric_after]
            if not points:
                return
            self.metric_after = max([self.metric_after, *(p["id"] for p in points if p.get("id") is not None)])
            payload = {**payload, "points": points}
        if payload.get("kind") != "log":
            await self.send_json(payload)
            return
        first, lines = payload["first"], payload["lines"]
        last = first + len(lines) - 1
        if last <= self.last_seq:
            return
        if first > self.last_seq + 1:
            gap = await database_sync_to_async(log_read)(self.run, after=self.last_seq, limit=first - self.last_seq - 1)
            if gap.lines and gap.first == self.last_seq + 1:
                await self.send_json({"kind": "log", "first": gap.first, "lines": gap.lines})
                self.last_seq = gap.first + len(gap.lines) - 1
        skip = max(0, self.last_seq + 1 - first)
        await self.send_json({"kind": "log", "first": first + skip, "lines": lines[skip:]})
        self.last_seq = last
