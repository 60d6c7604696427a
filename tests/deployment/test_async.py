"""Async request mode end to end over real HTTP: console.asgi in uvicorn accepts the call with
202 and a task id, forwards it to a model server on loopback, and serves the stored result;
tasks are scoped to their service and workspace; the sweep fails tasks whose gateway stopped."""
from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone

from apps.accounts.services import api_token_create
from apps.deployment import services
from apps.deployment.async_requests import async_requests_expire
from apps.deployment.choices import AsyncRequestStatus
from apps.deployment.keys import service_key_create
from apps.deployment.models import AiAppVersion, AsyncRequest
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances
from tests.deployment.packages import fixture_package

pytestmark = pytest.mark.django_db(transaction=True)

http = httpx.Client(timeout=30, trust_env=False)
BODY = {"meta": {"uuid": "u-1"}, "data": {"req_data": [{"x": 1, "y": 2}]}}


@pytest.fixture
def async_service(owner, workspace, echo_uri, cpu_flavor, local_pool, model_servers, tmp_path):
    row = services.ai_app_create(user=owner, workspace=workspace, name="slow-echo", source_uri=echo_uri,
                                 request_mode="async")
    services.ai_app_version_import(version_id=row.pk)
    version = AiAppVersion.objects.select_related("app").get(pk=row.pk)
    server = model_servers(fixture_package("echo", tmp_path / "srv"), name="slow-echo", version="0.0.1")
    service = service_create(user=owner, workspace=workspace, name="async-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    return attach_instances(service, {version.pk: [server.endpoint]})


def _finished(base: str, result_url: str, headers: dict, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = http.get(base + result_url, headers=headers).json()
        if state["status"] in ("succeeded", "failed"):
            return state
        time.sleep(0.1)
    raise AssertionError(f"task still {state['status']}")


def test_async_call_is_accepted_processed_and_fetched_later(asgi_server, gateway, owner, async_service):
    key = service_key_create(user=owner, service=async_service, name="k")[1]
    headers = {"X-Auth-Token": key}
    accepted = http.post(f"{asgi_server.url}/infer/{async_service.pk}/", json=BODY, headers=headers)
    assert accepted.status_code == 202
    task_id = accepted.json()["task_id"]
    assert accepted.json() == {"task_id": task_id, "status": "queued",
                               "result_url": f"/infer/{async_service.pk}/tasks/{task_id}"}
    assert accepted.headers["location"] == f"/infer/{async_service.pk}/tasks/{task_id}"
    state = _finished(asgi_server.url, accepted.json()["result_url"], headers)
    assert state["status"] == "succeeded" and state["response_status"] == 200
    assert state["version"] == "slow-echo 0.0.1" and state["content_type"] == "application/json"
    assert state["result"]["meta"] == {"uuid": "u-1"}
    assert state["result"]["data"]["resp_data"][0]["sum"] == 3
    raw = http.get(f"{asgi_server.url}/infer/{async_service.pk}/tasks/{task_id}/result", headers=headers)
    assert raw.status_code == 200 and raw.json() == state["result"]
    row = AsyncRequest.objects.get(pk=task_id)  # persisted, with who called and what answered
    assert (row.status, row.caller, bytes(row.body)) == (AsyncRequestStatus.SUCCEEDED, f"key #{row.caller.split('#')[1]}",
                                                         b"")
    assert row.started_at and row.finished_at and row.target == "/"

    # The ModelArts spelling of the address works the same way, and names itself in the answer.
    other = http.post(f"{asgi_server.url}/v1/infers/{async_service.pk}/", json=BODY, headers=headers)
    assert other.json()["result_url"].startswith(f"/v1/infers/{async_service.pk}/tasks/")


def test_pending_and_failed_tasks_say_why(asgi_server, gateway, owner, async_service):
    headers = {"X-Auth-Token": service_key_create(user=owner, service=async_service, name="k")[1]}
    slow = http.post(f"{asgi_server.url}/infer/{async_service.pk}/",
                     json={"data": {"req_data": [{"x": 1, "y": 1, "sleep": 1.5}]}}, headers=headers).json()
    early = http.get(f"{asgi_server.url}{slow['result_url']}/result", headers=headers)
    assert early.status_code == 409 and early.json()["error_code"] == "ModelArts.4505"
    assert http.get(f"{asgi_server.url}{slow['result_url']}", headers=headers).json()["status"] in ("queued", "running")
    assert _finished(asgi_server.url, slow["result_url"], headers)["status"] == "succeeded"

    refused = http.post(f"{asgi_server.url}/infer/{async_service.pk}/", json={"data": {"req_data": [{"x": 1}]}},
                        headers=headers).json()
    state = _finished(asgi_server.url, refused["result_url"], headers)
    assert (state["status"], state["response_status"], state["error_code"]) == ("failed", 400, "ModelArts.4500")
    assert state["result"] == {"error_code": "MR.0101", "error_msg": "record 0 needs x and y"}


def test_tasks_are_scoped_to_their_service_and_workspace(asgi_server, gateway, owner, outsider, workspace,
                                                        async_service, echo_version, cpu_flavor, local_pool):
    key = service_key_create(user=owner, service=async_service, name="k")[1]
    task = http.post(f"{asgi_server.url}/infer/{async_service.pk}/", json=BODY, headers={"X-Auth-Token": key}).json()
    path = f"/infer/{async_service.pk}/tasks/{task['task_id']}"
    assert http.get(asgi_server.url + path).status_code == 401  # no credentials
    _t, stranger = api_token_create(user=outsider, name="cli")
    answer = http.get(asgi_server.url + path, headers={"X-Auth-Token": stranger})
    assert (answer.status_code, answer.json()["error_code"]) == (404, "APIG.0101")
    # Another (async) service of the same workspace does not know this task.
    second = service_create(user=owner, workspace=workspace, name="async-two", versions=[
        {"model_version": async_service.versions.get().model_version, "weight": 100, "flavor": cpu_flavor,
         "pool": local_pool}])
    second_key = service_key_create(user=owner, service=second, name="k")[1]
    elsewhere = http.get(f"{asgi_server.url}/infer/{second.pk}/tasks/{task['task_id']}",
                         headers={"X-Auth-Token": second_key})
    assert elsewhere.status_code == 404
    assert http.get(asgi_server.url + path, headers={"X-Auth-Token": second_key}).status_code == 401  # wrong key
    unknown = http.get(f"{asgi_server.url}/infer/{async_service.pk}/tasks/00000000-0000-0000-0000-000000000000",
                       headers={"X-Auth-Token": key})
    assert unknown.status_code == 404
    # A synchronous service answers at once and keeps no task.
    sync = attach_instances(service_create(user=owner, workspace=workspace, name="sync-svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}]),
        {echo_version.pk: [async_service.instances.get().run.endpoint]})
    sync_key = service_key_create(user=owner, service=sync, name="k")[1]
    direct = http.post(f"{asgi_server.url}/infer/{sync.pk}/", json=BODY, headers={"X-Auth-Token": sync_key})
    assert direct.status_code == 200 and not AsyncRequest.objects.filter(service=sync).exists()


def test_the_sweep_fails_stuck_tasks_and_forgets_old_ones(owner, async_service, settings):
    now = timezone.now()
    common = {"service": async_service, "workspace": async_service.workspace, "target": "/"}
    stuck = AsyncRequest.objects.create(status=AsyncRequestStatus.RUNNING, started_at=now - timedelta(hours=1),
                                        body=b"{}", **common)
    busy = AsyncRequest.objects.create(status=AsyncRequestStatus.RUNNING, started_at=now, **common)
    old = AsyncRequest.objects.create(status=AsyncRequestStatus.SUCCEEDED, **common)
    AsyncRequest.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=settings.ATELIER_GATEWAY_ASYNC_RESULT_DAYS + 1))
    assert async_requests_expire(now) == {"async_lost": 1, "async_deleted": 1}
    stuck.refresh_from_db()
    assert (stuck.status, stuck.error_code, bytes(stuck.body)) == (AsyncRequestStatus.FAILED, "ModelArts.4503", b"")
    assert "stopped before the instance answered" in stuck.error_msg
    busy.refresh_from_db()
    assert busy.status == AsyncRequestStatus.RUNNING


def test_the_call_guide_documents_async_calls(client, owner, async_service, echo_version, workspace, cpu_flavor,
                                              local_pool):
    client.force_login(owner)
    page = client.get(f"/services/{async_service.pk}/?tab=guide").content.decode()
    assert 'data-testid="async-guide"' in page
    assert "slow-echo 0.0.1 runs in async request mode" in page
    assert f"/infer/{async_service.pk}/tasks/&lt;id&gt;/result" in page
    sync = service_create(user=owner, workspace=workspace, name="sync-svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    assert 'data-testid="async-guide"' not in client.get(f"/services/{sync.pk}/?tab=guide").content.decode()
