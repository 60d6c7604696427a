"""Realtime messages of the run engine, sent from one background event loop per process.

`apps.core.services.publish` runs the channel layer through `async_to_sync`, which sets up a
loop and a Redis connection per call (~10 ms): fine for a page action, too slow for a
supervisor streaming thousands of log batches. `LiveSender` keeps one loop and one layer
per process and sends every message in the order it was queued, so a run's final status
never overtakes its last log lines.
"""
from __future__ import annotations

import asyncio
import logging
import os
import threading

from django.db import transaction

logger = logging.getLogger(__name__)


class LiveSender:
    _instance: "LiveSender | None" = None
    _lock = threading.Lock()

    def __init__(self):
        from channels.layers import channel_layers

        self.pid = os.getpid()
        self.layer = channel_layers.make_backend("default")
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self.thread = threading.Thread(target=self._run, name="atelier-live-sender", daemon=True)
        self.thread.start()
        self._ready.wait(10)

    @classmethod
    def get(cls) -> "LiveSender":
        """The sender of this process (a forked child gets its own: threads do not survive fork)."""
        with cls._lock:
            if cls._instance is None or cls._instance.pid != os.getpid() or not cls._instance.thread.is_alive():
                cls._instance = cls()
            return cls._instance

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.queue: asyncio.Queue = asyncio.Queue()
        self._ready.set()
        self.loop.run_until_complete(self._pump())

    async def _pump(self) -> None:
        while True:
            group, payload, done = await self.queue.get()
            if done is not None:
                done.set()
                continue
            try:
                await self.layer.group_send(group, {"type": "publish", "payload": payload})
            except Exception:  # Redis hiccup: viewers catch up from the log file and the next status
                logger.warning("live message to %s failed", group, exc_info=True)

    def send(self, group: str, payload: dict) -> None:
        """Queue `payload` for `group`; returns at once."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, payload, None))

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything queued so far has been sent (before a supervisor finishes)."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (None, None, done))
        return done.wait(timeout)


def live_send(group: str, payload: dict) -> None:
    LiveSender.get().send(group, payload)


def live_send_on_commit(group: str, payload: dict) -> None:
    """Send after the surrounding transaction commits, so watchers never see rolled-back state."""
    transaction.on_commit(lambda: live_send(group, payload))


class Publisher:
    """A run's channel group on the process's sender (what the supervisor's log and metrics use)."""

    def __init__(self, group: str):
        self.group = group
        self.sender = LiveSender.get()

    def send(self, payload: dict) -> None:
        self.sender.send(self.group, payload)

    def close(self, timeout: float = 10) -> None:
        self.sender.flush(timeout)
