"""The operation runner: moves a DatasetOperation through queued → running → finished.

Handlers (one per kind) receive an `OperationContext` to report progress, per-item errors
and to notice a stop request. A handler raises `OperationFailed` for a structural error
(the whole run fails with that message); per-item problems are `ctx.error(...)` rows and
the run still succeeds with what was valid.
"""
from __future__ import annotations

import logging
import time

from django.db import transaction
from django.utils import timezone

from apps.core.services import publish

from .choices import OperationKind, OperationStatus
from .models import DatasetOperation, OperationError

logger = logging.getLogger(__name__)

# Keep at most this many error rows per run: a 1M-line manifest that is all wrong stays readable
# and the database small; the total is still counted in `error_count`.
MAX_ERROR_ROWS = 10_000
# Progress is written and pushed at most this often (seconds), so big runs do not flood the database.
PROGRESS_INTERVAL = 0.5


class OperationFailed(Exception):
    """A structural problem that fails the whole run; the message is shown to the user as is."""


class OperationStopped(Exception):
    pass


class OperationContext:
    def __init__(self, operation: DatasetOperation):
        self.operation = operation
        self.dataset = operation.dataset
        self.params = operation.params
        self._errors: list[OperationError] = []
        self.error_count = 0
        self.done = 0
        self.total = 0
        self._last_flush = 0.0
        self._last_stop_check = 0.0

    # -- reporting ------------------------------------------------------------------------
    def error(self, item: str, code: str, message: str, line: int | None = None) -> None:
        """Record one rejected item (which file, which line, which rule)."""
        self.error_count += 1
        if self.error_count <= MAX_ERROR_ROWS:
            self._errors.append(OperationError(operation=self.operation, item=str(item)[:1100], line=line, code=code,
                                               message=message))
        if len(self._errors) >= 500:
            self.flush_errors()

    def flush_errors(self) -> None:
        if self._errors:
            OperationError.objects.bulk_create(self._errors)
            self._errors = []

    def set_total(self, total: int) -> None:
        self.total = total
        self.progress(self.done, force=True)

    def advance(self, count: int = 1) -> None:
        self.progress(self.done + count)

    def progress(self, done: int, *, force: bool = False) -> None:
        self.done = done
        now = time.monotonic()
        if not force and now - self._last_flush < PROGRESS_INTERVAL:
            return
        self._last_flush = now
        self.flush_errors()
        DatasetOperation.objects.filter(pk=self.operation.pk).update(
            progress_done=self.done, progress_total=max(self.total, self.done), error_count=self.error_count)
        publish(f"datasets.datasetoperation.{self.operation.pk}",
                {"kind": "progress", "done": self.done, "total": max(self.total, self.done),
                 "errors": self.error_count, "status": OperationStatus.RUNNING})
        self.check_stop()

    def check_stop(self) -> None:
        """Raise OperationStopped when the user asked to stop (checked at most twice a second)."""
        now = time.monotonic()
        if now - self._last_stop_check < PROGRESS_INTERVAL:
            return
        self._last_stop_check = now
        if DatasetOperation.objects.filter(pk=self.operation.pk, stop_requested=True).exists():
            raise OperationStopped()


# Kind → (module, function) of its handler; modules load on first use so the web process stays light.
HANDLERS = {
    OperationKind.IMPORT: ("imports", "run_import"),
    OperationKind.SYNC: ("imports", "run_sync"),
    OperationKind.THUMBNAILS: ("imports", "run_thumbnails"),
    OperationKind.PUBLISH: ("versions", "run_publish"),
    OperationKind.EXPORT: ("exports", "run_export"),
    OperationKind.ANALYSIS: ("analysis", "run_analysis"),
    OperationKind.AUTO_GROUP: ("grouping", "run_auto_group"),
    OperationKind.PROCESSING: ("processing", "run_processing"),
}


def _handler(kind: str):
    import importlib

    module, function = HANDLERS[kind]
    return getattr(importlib.import_module(f"apps.datasets.{module}"), function)


def operation_execute(operation_id: int) -> str:
    """Run the operation if it is still queued; return its final status. Safe to call twice."""
    with transaction.atomic():
        claimed = DatasetOperation.objects.filter(pk=operation_id, status=OperationStatus.QUEUED).update(
            status=OperationStatus.RUNNING, started_at=timezone.now())
    if not claimed:
        status = DatasetOperation.objects.filter(pk=operation_id).values_list("status", flat=True).first()
        return status or "missing"
    operation = DatasetOperation.objects.select_related("dataset", "dataset__workspace", "version",
                                                        "created_by").get(pk=operation_id)
    ctx = OperationContext(operation)
    publish(f"datasets.datasetoperation.{operation.pk}", {"kind": "status", "status": OperationStatus.RUNNING})
    status, message, result = OperationStatus.SUCCEEDED, "", {}
    try:
        result = _handler(operation.kind)(ctx) or {}
    except OperationStopped:
        status, message = OperationStatus.STOPPED, "Stopped at the user's request."
    except OperationFailed as exc:
        status, message = OperationStatus.FAILED, str(exc)
    except Exception as exc:  # an unexpected bug must still end the run visibly, never leave it "running"
        logger.exception("dataset operation %s failed", operation.uid)
        status, message = OperationStatus.FAILED, f"Internal error: {exc.__class__.__name__}: {exc}"
    ctx.flush_errors()
    DatasetOperation.objects.filter(pk=operation.pk).update(
        status=status, message=message, result=result, finished_at=timezone.now(),
        progress_done=ctx.done, progress_total=max(ctx.total, ctx.done), error_count=ctx.error_count)
    publish(f"datasets.datasetoperation.{operation.pk}", {"kind": "status", "status": status, "message": message,
                                                          "done": ctx.done, "errors": ctx.error_count})
    publish(f"datasets.dataset.{operation.dataset_id}", {"kind": "operation", "operation": operation.pk,
                                                         "status": status})
    return status
