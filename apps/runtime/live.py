"""Realtime messages of the run engine, through the process's ordered sender.

The supervisor streams thousands of log batches; `apps.core.realtime.LiveSender` sends them
from one background loop in the order they were queued, so a run's final status never
overtakes its last log lines.
"""
from __future__ import annotations

from apps.core.realtime import LiveSender


class Publisher:
    """A run's channel group on the process's sender (what the supervisor's log and metrics use)."""

    def __init__(self, group: str):
        self.group = group
        self.sender = LiveSender.get()

    def send(self, payload: dict) -> None:
        self.sender.send(self.group, payload)

    def close(self, timeout: float = 10) -> None:
        self.sender.flush(timeout)
