"""The gateway's async request mode: accept a call with 202 and a task id, forward it to an
instance in the background, and answer `GET <service address>/tasks/<id>[/result]`.

    POST /infer/<service>/…            → 202 {"task_id", "status": "queued", "result_url"}
    GET  /infer/<service>/tasks/<id>    → 200 {"task_id", "status", "version", "result", …}
    GET  /infer/<service>/tasks/<id>/result → the instance's answer as it sent it (409 until done)

The call is stored before 202 is sent (`async_requests.async_request_create`), so an accepted
call is never only in memory. Each gateway process forwards at most
ATELIER_GATEWAY_ASYNC_CONCURRENCY calls at a time and waits up to
ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS for an answer; the deployment sweep fails tasks whose
gateway stopped mid-way. Reading a task needs the same credentials as calling the service, and
tasks are looked up within the service, so other services' and workspaces' tasks answer 404.
"""
from __future__ import annotations

import asyncio
import json
import logging
import re
import time

from django.conf import settings

from . import async_requests, upstream

logger = logging.getLogger(__name__)

TASK_RE = re.compile(r"^/tasks/([0-9a-fA-F-]{32,36})(/result)?/?$")
# Strong references to the background forwards, so the loop does not drop them half-way.
_RUNNING: set[asyncio.Task] = set()


def _caller_label(caller) -> str:
    return f"key #{caller.key_id}" if caller.kind == "key" else f"user {caller.username}"


async def accept(gateway, state: dict, scope, send, route, version, target: str, out_headers: list, body: bytes,
                 caller, *, base: str) -> None:
    """Store the call, answer 202 with its task id, and forward it in the background."""
    from .gateway import _db, _respond

    query = scope.get("query_string", b"")
    full_target = target + (f"?{query.decode('latin-1')}" if query else "")
    content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
    task_id = await _db(async_requests.async_request_create)(
        service_id=route.service_id, workspace_id=route.workspace_id, model_version_id=version.model_version_id,
        version_label=version.label, method=scope["method"], target=full_target, content_type=content_type,
        body=body, caller=_caller_label(caller))
    result_url = f"{base}/tasks/{task_id}"
    payload = json.dumps({"task_id": task_id, "status": "queued", "result_url": result_url}).encode()
    task = asyncio.get_running_loop().create_task(
        _process(gateway, state, route, version.model_version_id, task_id, scope["method"], full_target,
                 out_headers, body))
    _RUNNING.add(task)
    task.add_done_callback(_RUNNING.discard)
    await _respond(send, 202, payload, [(b"location", result_url.encode())])


async def _process(gateway, state: dict, route, model_version_id: int, task_id: str, method: str, target: str,
                   out_headers: list, body: bytes) -> None:
    """Forward one stored call to a ready instance of its version and keep the answer."""
    from .gateway import GatewayRefusal, _db

    slots = state.get("async_slots")
    if slots is None:
        slots = state["async_slots"] = asyncio.Semaphore(settings.ATELIER_GATEWAY_ASYNC_CONCURRENCY)
    finish = _db(async_requests.async_request_finish)
    async with slots:
        try:
            if not await _db(async_requests.async_request_start)(task_id):
                return
            started = time.perf_counter()
            # The routing table of now: instances may have come or gone while the call waited.
            fresh = await gateway._route(route.service_id)
            version = fresh.versions.get(model_version_id)
            if version is None or not version.endpoints:
                version = gateway._fallback(fresh, version, False)
            timeout = settings.ATELIER_GATEWAY_ASYNC_TIMEOUT_SECONDS
            response = None
            for _ in range(max(1, len(version.endpoints))):
                endpoint = version.next_endpoint()
                if not gateway.breaker.allows(endpoint):
                    continue
                try:
                    response = await upstream.request(state["pool"], scheme=version.scheme, endpoint=endpoint,
                                                      method=method, target=target, headers=out_headers, body=body,
                                                      timeout=timeout)
                    chunks = [chunk async for chunk in response.body]
                    break
                except upstream.UpstreamTimeout:
                    gateway.stats.record(route.service_id, version.model_version_id, version.label, False,
                                         (time.perf_counter() - started) * 1000)
                    await finish(task_id, succeeded=False, error_code="ModelArts.4503",
                                 error_msg=f"Backend service respond timeout: no answer within {timeout:g} s, the "
                                           "limit of one asynchronous request.")
                    return
                except upstream.UpstreamProtocolMismatch as exc:
                    gateway.stats.record(route.service_id, version.model_version_id, version.label, False,
                                         (time.perf_counter() - started) * 1000)
                    await finish(task_id, succeeded=False, error_code="ModelArts.4503", error_msg=str(exc))
                    return
                except upstream.UpstreamError as exc:
                    logger.info("instance %s of %s failed an async request: %s", endpoint, route.name, exc)
                    gateway.breaker.failure(endpoint)
                    response = None
            ok = response is not None and response.status < 400
            gateway.stats.record(route.service_id, version.model_version_id, version.label, ok,
                                 (time.perf_counter() - started) * 1000)
            if response is None:
                await finish(task_id, succeeded=False, error_code="ModelArts.4302",
                             error_msg="Gateway forwarding error. Failed to invoke backend service due to connection "
                                       "refused.")
                return
            content_type = next((v.decode("latin-1") for k, v in response.headers if k == b"content-type"), "")
            await finish(task_id, succeeded=ok, response_status=response.status, content_type=content_type,
                         body=b"".join(chunks),
                         error_code="" if ok else "ModelArts.4500",
                         error_msg="" if ok else f"The model answered HTTP {response.status}; see the result.")
        except GatewayRefusal as refusal:
            await finish(task_id, succeeded=False, error_code=refusal.code, error_msg=refusal.message)
        except Exception as exc:  # the task must end in a state the caller can read
            logger.exception("async request %s failed", task_id)
            await finish(task_id, succeeded=False, error_code="ModelArts.4500", error_msg=f"Gateway error: {exc}")


async def task_answer(send, route, sub: str, *, base: str) -> None:
    """`GET …/tasks/<id>`: the task's state and result; `…/result`: the raw answer."""
    from .gateway import _db, _json_response, _respond

    match = TASK_RE.match(sub)
    row = await _db(async_requests.async_request_get)(route.service_id, match.group(1))
    if row is None:
        await _respond(send, *_json_response(404, "APIG.0101", "No such task for this service (tasks are kept "
                                             f"{settings.ATELIER_GATEWAY_ASYNC_RESULT_DAYS} days)."))
        return
    if not match.group(2):
        payload = json.dumps(async_requests.async_request_payload(row, base=base)).encode()
        await _respond(send, 200, payload)
        return
    if row.finished_at is None or row.response_status is None:
        detail = row.error_msg or f"the task is {row.status}; ask again later"
        await _respond(send, *_json_response(409, "ModelArts.4505", f"No result yet: {detail}."))
        return
    body = bytes(row.response_body or b"")
    await send({"type": "http.response.start", "status": row.response_status,
                "headers": [(b"content-type", (row.response_content_type or "application/octet-stream").encode()),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
