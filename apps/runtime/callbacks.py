"""Owner callbacks: how a training job, notebook or service hears about its runs.

An owning app registers one handler per owner type in its `AppConfig.ready()`::

    from apps.runtime.callbacks import owner_callback_register
    owner_callback_register("training.trainingjob", training_job_on_run_change)

The run engine calls the handler after the transaction that changed the run commits,
in whichever process made the change (web process, worker or beat). A handler that
raises is logged and does not undo the change; handlers must be idempotent because a
status can be reported again after a restart.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import transaction

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunChange:
    """What happened to a run: a status change (`previous` → `status`), readiness ("ready") or a suspected hang."""

    run_id: int
    owner_type: str
    owner_id: str
    kind: str  # "status", "ready" or "hang" (suspected hang reported; the run goes on)
    previous: str
    status: str
    reason: str = ""
    exit_code: int | None = None


_HANDLERS: dict[str, Callable[[RunChange], None]] = {}


def owner_callback_register(owner_type: str, handler: Callable[[RunChange], None]) -> None:
    """Route changes of runs whose `owner_type` is this to `handler` (one handler per type)."""
    existing = _HANDLERS.get(owner_type)
    if existing is not None and existing is not handler:
        raise ValueError(f"owner type {owner_type!r} already has a run callback")
    _HANDLERS[owner_type] = handler


def owner_callback_unregister(owner_type: str) -> None:
    _HANDLERS.pop(owner_type, None)


def _call(change: RunChange) -> None:
    handler = _HANDLERS.get(change.owner_type)
    if handler is None:
        return
    try:
        handler(change)
    except Exception:  # the owner's failure must not roll back or block the engine
        logger.exception("run callback for %s %s failed", change.owner_type, change.owner_id)


def owner_notify_on_commit(change: RunChange) -> None:
    """Deliver `change` to the owner's handler once the current transaction commits."""
    if change.owner_type:
        transaction.on_commit(lambda: _call(change))
