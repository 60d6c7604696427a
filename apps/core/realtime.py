"""Realtime sends from synchronous code: one background event loop per process.

Going through `async_to_sync` for each message sets up a loop and a Redis connection per call
(~10–25 ms), which dominated the latency of saves that notify watchers. `LiveSender` keeps one
loop and one channel layer per process and sends every message in the order it was queued, so a
status update never overtakes the lines published before it. Sends are best effort: viewers
catch up from persisted state (log files, rows) when Redis hiccups.
"""
from __future__ import annotations

import asyncio
import atexit
import logging
import os
import threading

logger = logging.getLogger(__name__)

# How long process exit waits for queued messages; realtime is best effort, exit must not hang.
EXIT_FLUSH_SECONDS = 2.0


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

    @classmethod
    def flush_current(cls, timeout: float = EXIT_FLUSH_SECONDS) -> bool:
        """Flush this process's sender if it has one (used at exit and by tests)."""
        instance = cls._instance
        if instance is None or instance.pid != os.getpid() or not instance.thread.is_alive():
            return True
        return instance.flush(timeout)

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
            except Exception:  # a realtime hiccup must never fail the write that caused it
                logger.warning("live message to %s failed", group, exc_info=True)

    def send(self, group: str, payload: dict) -> None:
        """Queue `payload` for `group`; returns at once."""
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (group, payload, None))

    def flush(self, timeout: float = 10) -> bool:
        """Wait until everything queued so far has been sent."""
        done = threading.Event()
        self.loop.call_soon_threadsafe(self.queue.put_nowait, (None, None, done))
        return done.wait(timeout)


atexit.register(LiveSender.flush_current)
