"""Async request mode (AI applications created with request mode "async", seed-06 §2.2): the
gateway stores the call, answers 202 with a task id, forwards the stored request to an instance
in the background, and keeps the answer for `GET /infer/<service>/tasks/<id>`.

These functions are the gateway's synchronous half (it calls them through `sync_to_async`);
every read is scoped by the service, and the gateway has already checked that the caller may
call that service, so another workspace's task is never found.
"""
from __future__ import annotations

import base64
import json
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .choices import AsyncRequestStatus
from .models import AsyncRequest

S = AsyncRequestStatus
# Grace beyond the async timeout before a task still queued or running counts as lost.
LOST_GRACE_SECONDS = 60


def async_request_create(*, service_id: str, workspace_id: int, model_version_id: int, version_label: str,
                         method: str, target: str, content_type: str, body: bytes, caller: str) -> str:
    """Store an accepted call (status queued); returns its id."""
    row = AsyncRequest.objects.create(
        service_id=service_id, workspace_id=workspace_id, model_version_id=model_version_id,
        version_label=version_label[:100], method=method[:8], target=target[:2048], content_type=content_type[:255],
        body=body, caller=caller[:160])
    return str(row.pk)


def async_request_start(request_id: str) -> bool:
    """queued → running; False when the row is gone or was already taken."""
    return bool(AsyncRequest.objects.filter(pk=request_id, status=S.QUEUED).update(
        status=S.RUNNING, started_at=timezone.now()))


def async_request_finish(request_id: str, *, succeeded: bool, response_status: int | None = None,
                         content_type: str = "", body: bytes = b"", error_code: str = "", error_msg: str = "") -> None:
    """running → succeeded | failed with the instance's answer (or the gateway's reason). The
    request body is dropped then: it is no longer needed and may be large."""
    AsyncRequest.objects.filter(pk=request_id, status__in=[S.QUEUED, S.RUNNING]).update(
        status=S.SUCCEEDED if succeeded else S.FAILED, response_status=response_status,
        response_content_type=content_type[:255], response_body=body, error_code=error_code[:32],
        error_msg=error_msg[:1000], finished_at=timezone.now(), body=b"")


def async_request_get(service_id: str, request_id: str) -> AsyncRequest | None:
    """The task `request_id` of this service, or None."""
    try:
        return AsyncRequest.objects.filter(pk=request_id, service_id=service_id).first()
    except (ValueError, TypeError):  # not a UUID
        return None


def async_request_payload(row: AsyncRequest, *, base: str) -> dict:
    """What `GET …/tasks/<id>` answers. `result` is the instance's JSON answer; any other answer
    is under `result_base64`, and `…/tasks/<id>/result` returns it as the instance sent it."""
    payload = {
        "task_id": str(row.pk), "status": row.status, "version": row.version_label,
        "created_at": row.created_at.isoformat(), "started_at": row.started_at.isoformat() if row.started_at else None,
        "finished_at": row.finished_at.isoformat() if row.finished_at else None,
        "response_status": row.response_status, "content_type": row.response_content_type or None,
        "result": None, "result_url": f"{base}/tasks/{row.pk}/result",
    }
    if row.error_code or row.error_msg:
        payload.update(error_code=row.error_code, error_msg=row.error_msg)
    body = bytes(row.response_body or b"")
    if row.finished_at and body:
        try:
            payload["result"] = json.loads(body)
        except ValueError:
            payload["result_base64"] = base64.b64encode(body).decode()
    return payload


def async_requests_expire(now=None) -> dict[str, int]:
    """Sweep: tasks whose gateway stopped mid-way fail with a clear reason; old tasks are deleted."""
    now = now or timezone.now()
    lost_before = now - timedelta(seconds=settings.ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS + LOST_GRACE_SECONDS)
    # A running task outlived the timeout its gateway enforces; a queued one waited a whole day
    # (a busy gateway keeps its queue for hours, a stopped one forgets it).
    stuck = (Q(status=S.RUNNING, started_at__lt=lost_before)
             | Q(status=S.QUEUED, created_at__lt=now - timedelta(days=1)))
    lost = AsyncRequest.objects.filter(stuck).update(
        status=S.FAILED, error_code="ModelArts.4503", finished_at=now, body=b"",
        error_msg="The gateway that accepted this request stopped before the instance answered; send it again.")
    old = now - timedelta(days=settings.ATELIER_GATEWAY_ASYNC_RESULT_DAYS)
    deleted, _ = AsyncRequest.objects.filter(created_at__lt=old).delete()
    return {"async_lost": lost, "async_deleted": deleted}
