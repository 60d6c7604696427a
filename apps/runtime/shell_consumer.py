"""The browser shell: `/ws/runtime/runs/<pk>/shell/` relays a terminal into a running run.

The browser speaks JSON text frames: ``{"type": "input", "data": "ls\\r"}``,
``{"type": "resize", "cols": 120, "rows": 32}``. It receives binary frames (terminal output,
raw bytes for xterm.js) and JSON text frames ``{"type": "ready", "cwd", "user", "idle_seconds"}``,
``{"type": "exit", "reason", "message"}`` and ``{"type": "error", "message"}``.

Who may connect: a member of the run's workspace (else closed with 4404, like every consumer)
whose role allows ``run:exec`` (else 4403), while the run is Running (else 4409). Query
parameters ``cols`` and ``rows`` size the terminal from the first byte. Every session start and
end (and every refusal of a member) is audited. The worker side is `apps.runtime.shell`.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from urllib.parse import parse_qs

import redis
import redis.asyncio as aioredis
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.http import Http404

from apps.core.choices import AuditResult
from apps.core.consumers import DENIED_CLOSE_CODE
from apps.core.permissions import has_perm
from apps.core.services import audit_record

from . import shell
from .choices import RunStatus
from .models import Run
from .selectors import run_get_for_user

logger = logging.getLogger(__name__)

EXEC_PERMISSION = "run:exec"
# Close codes the client module (static/runtime/shell/shell.js) explains to the user.
FORBIDDEN_CLOSE_CODE = 4403
NOT_RUNNING_CLOSE_CODE = 4409
ENDED_CLOSE_CODE = 4000  # the session ended on the worker side (exit, idle, run ended)
# How long the console waits for the worker to start the shell.
READY_TIMEOUT_SECONDS = 15
# How often the console looks whether the run's supervisor still offers shells (a dead worker).
HOST_CHECK_SECONDS = 5
# Frames taken from Redis per round trip after the first (at most 64 KiB each).
RELAY_BATCH = 63


def _size(query: dict, name: str, default: int) -> int:
    raw = (query.get(name) or [""])[0]
    return int(raw) if raw.isdigit() else default


def _audit(user, run: Run, action: str, result: str = AuditResult.SUCCESS, **detail) -> None:
    audit_record(actor=user, action=action, obj=run, result=result, detail=detail)


class RunShellConsumer(AsyncWebsocketConsumer):
    sid: str | None = None
    run: Run | None = None
    redis: aioredis.Redis | None = None

    async def connect(self):
        user = self.scope.get("user")
        pk = self.scope["url_route"]["kwargs"]["pk"]
        await self.accept()  # then close with a code: a refused handshake reaches the browser as a bare 1006
        if user is None or not user.is_authenticated:
            await self.close(code=DENIED_CLOSE_CODE)
            return
        try:
            run = await database_sync_to_async(run_get_for_user)(user, pk)
        except (Http404, PermissionDenied):
            await self.close(code=DENIED_CLOSE_CODE)
            return
        allowed = await database_sync_to_async(has_perm)(user, run.workspace, EXEC_PERMISSION)
        if not allowed:
            await database_sync_to_async(_audit)(user, run, "run:exec", AuditResult.DENIED,
                                                 reason=f"role does not allow {EXEC_PERMISSION}")
            await self._refuse(FORBIDDEN_CLOSE_CODE, f"Your role does not allow {EXEC_PERMISSION}.")
            return
        if run.status != RunStatus.RUNNING:
            await self._refuse(NOT_RUNNING_CLOSE_CODE,
                               f"A shell opens only while the run is Running; it is {run.get_status_display()}.")
            return
        self.user, self.run = user, run
        self.redis = aioredis.from_url(settings.REDIS_URL)
        try:
            offered = await self.redis.get(shell.host_key(run.pk))
        except redis.RedisError as exc:
            await self._refuse(NOT_RUNNING_CLOSE_CODE, f"The shell relay is unavailable: {exc}.")
            return
        if offered is None or offered.decode() != str(run.attempt):
            await self._refuse(NOT_RUNNING_CLOSE_CODE, "The run's worker offers no shell right now "
                                                       "(the process may be finishing, or the worker is gone).")
            return
        query = parse_qs(self.scope.get("query_string", b"").decode("latin-1"))
        self.sid = uuid.uuid4().hex
        self.end_reason = "disconnected"
        try:
            await self.redis.set(shell.alive_key(self.sid), "1", ex=shell.ALIVE_TTL_SECONDS)
            await self._command("open", cols=_size(query, "cols", 80), rows=_size(query, "rows", 24),
                                user=user.get_username())
        except redis.RedisError as exc:
            self.sid = None
            await self._refuse(NOT_RUNNING_CLOSE_CODE, f"The shell relay is unavailable: {exc}.")
            return
        self.reader = asyncio.create_task(self._relay())

    async def _refuse(self, code: int, message: str) -> None:
        await self.send(text_data=json.dumps({"type": "error", "message": message}))
        await self.close(code=code)
        if self.redis is not None:
            await self.redis.aclose()
            self.redis = None

    async def _command(self, op: str, **fields) -> None:
        key = shell.in_key(self.run.pk)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.rpush(key, json.dumps({"sid": self.sid, "op": op, **fields}))
            # A worker that died leaves the list behind; it goes once nobody writes to it for a while.
            pipe.expire(key, shell.OUT_TTL_SECONDS)
            await pipe.execute()

    async def _relay(self) -> None:
        """Forward the session's frames from Redis to the browser until it ends."""
        out = shell.out_key(self.sid)
        started = time.monotonic()
        self.ready = False
        next_alive = next_host = started
        try:
            while True:
                item = await self.redis.blpop([out], timeout=1)
                frames = []
                if item is not None:
                    # Drain what else is queued in one round trip: fast output arrives in batches.
                    frames = [item[1], *(await self.redis.lpop(out, RELAY_BATCH) or [])]
                for frame in frames:
                    if await self._frame(frame):
                        return
                now = time.monotonic()
                if not self.ready and now - started > READY_TIMEOUT_SECONDS:
                    await self._end("no-answer", "error", NOT_RUNNING_CLOSE_CODE,
                                    f"The run's worker did not start a shell within {READY_TIMEOUT_SECONDS} s.")
                    return
                # Checked even while output streams: a busy shell must not look abandoned.
                if now >= next_alive:
                    await self.redis.set(shell.alive_key(self.sid), "1", ex=shell.ALIVE_TTL_SECONDS)
                    next_alive = now + shell.ALIVE_REFRESH_SECONDS
                if now >= next_host:
                    next_host = now + HOST_CHECK_SECONDS
                    if await self.redis.get(shell.host_key(self.run.pk)) is None:
                        await self._end("run-ended", "exit", ENDED_CLOSE_CODE, "The run is no longer running.")
                        return
        except asyncio.CancelledError:
            raise
        except redis.RedisError as exc:
            logger.warning("shell %s of run %s: Redis failed", self.sid, self.run.pk, exc_info=True)
            await self._end("relay-error", "error", NOT_RUNNING_CLOSE_CODE, f"The shell relay failed: {exc}.")

    async def _frame(self, frame: bytes) -> bool:
        """Handle one frame from the worker; True when the session is over."""
        if frame[:1] == b"o":
            await self.send(bytes_data=frame[1:])
            return False
        event = json.loads(frame[1:])
        if event["event"] == "ready":
            self.ready = True
            await database_sync_to_async(_audit)(self.user, self.run, "run:shell_open", sid=self.sid,
                                                 node=self.run.node_rank, pid=event.get("pid"),
                                                 as_user=event.get("user"))
            await self.send(text_data=json.dumps({"type": "ready", **{
                k: event.get(k) for k in ("cwd", "user", "shell", "idle_seconds")}}))
            return False
        if event["event"] == "error":
            await self._end("error", "error", NOT_RUNNING_CLOSE_CODE, event.get("message") or "")
        else:
            await self._end(event.get("reason") or "exit", "exit", ENDED_CLOSE_CODE, event.get("message") or "")
        return True

    async def _end(self, reason: str, kind: str, code: int, message: str) -> None:
        """Tell the browser why the session ends (`kind` "exit" or "error"), then close with `code`."""
        self.end_reason = reason
        payload = {"type": kind, "message": message}
        if kind == "exit":
            payload["reason"] = reason
        await self.send(text_data=json.dumps(payload))
        await self.close(code=code)

    async def receive(self, text_data=None, bytes_data=None):
        if self.sid is None:
            return
        try:
            message = json.loads(text_data if text_data is not None else bytes_data.decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            return  # not ours to interpret; a well-behaved client never sends it
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "input" and isinstance(message.get("data"), str):
            data = message["data"]
            if len(data.encode("utf-8", "replace")) > shell.MAX_INPUT_BYTES:
                limit = shell.MAX_INPUT_BYTES // 1024
                await self.send(text_data=json.dumps({
                    "type": "notice", "message": f"Input over {limit} KiB at once was dropped."}))
                return
            await self._send_command("input", data=data)
        elif kind == "resize":
            await self._send_command("resize", cols=message.get("cols"), rows=message.get("rows"))

    async def _send_command(self, op: str, **fields) -> None:
        try:
            await self._command(op, **fields)
        except redis.RedisError as exc:
            logger.warning("shell %s of run %s: Redis failed", self.sid, self.run.pk, exc_info=True)
            await self._end("relay-error", "error", NOT_RUNNING_CLOSE_CODE, f"The shell relay failed: {exc}.")

    async def disconnect(self, code):
        if self.sid is None or self.redis is None:
            return
        reader = getattr(self, "reader", None)
        if reader is not None and not reader.done():
            reader.cancel()
            try:
                await reader
            except (asyncio.CancelledError, Exception):
                pass
        try:
            # The worker ends the shell; when the session ended over there, this is a no-op.
            await self._command("close", reason=self.end_reason)
            await self.redis.delete(shell.alive_key(self.sid), shell.out_key(self.sid))
        except redis.RedisError:
            pass  # the alive key lapses and the worker closes the shell on its own
        finally:
            await self.redis.aclose()
            self.redis = None
        await database_sync_to_async(_audit)(self.user, self.run, "run:shell_close", sid=self.sid,
                                             node=self.run.node_rank, reason=self.end_reason)
