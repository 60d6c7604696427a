"""End to end with a real Celery worker: import packages, deploy them as model-server runs and call
them through the gateway (JSON, multipart, SSE, WebSocket, KServe V2 with tritonclient, an 80/20
split), restart a crashed instance, scale without dropping requests, and run a batch service."""
from __future__ import annotations

import collections
import json
import os
import signal
import threading
import time

import httpx
import pytest

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.deployment import services
from apps.deployment.choices import ModelStatus, ServiceStatus
from apps.deployment.models import AiAppVersion, InferenceService
from apps.deployment.keys import service_key_create
from apps.deployment.serving import service_create, service_stop, service_update
from apps.deployment.sweep import deployment_sweep
from apps.runtime.models import Run
from tests.deployment.conftest import service_events, status_of, upload_package, wait_for
from tests.deployment.packages import fixture_package, png, sklearn_package

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

http = httpx.Client(timeout=30, trust_env=False)


def imported(version) -> AiAppVersion:
    return wait_for(lambda: AiAppVersion.objects.filter(pk=version.pk, status=ModelStatus.NORMAL).first(), timeout=60,
                    message=f"{version} to be imported")


def test_deploy_call_split_crash_and_scale(deploy_worker, asgi_server, gateway, owner, workspace, models_bucket,
                                           cpu_flavor, local_pool, tmp_path, settings):
    settings.ATELIER_DEPLOYMENT_METRIC_SECONDS = 1  # instances report CPU and memory every second
    deploy_worker(concurrency=6)
    echo_uri = upload_package(fixture_package("echo", tmp_path), "models", "echo")
    shapes_uri = upload_package(fixture_package("shapes", tmp_path), "models", "shapes")
    iris_uri = upload_package(sklearn_package(tmp_path), "models", "iris")
    first = services.ai_app_create(user=owner, workspace=workspace, name="echo", source_uri=echo_uri)
    second = services.ai_app_version_create(user=owner, app=first.app, source_uri=echo_uri)
    shapes = services.ai_app_create(user=owner, workspace=workspace, name="shapes", source_uri=shapes_uri)
    iris = services.ai_app_create(user=owner, workspace=workspace, name="iris", source_uri=iris_uri)
    first, second, shapes, iris = (imported(v) for v in (first, second, shapes, iris))

    row = {"flavor": cpu_flavor, "pool": local_pool}
    echo_svc = service_create(user=owner, workspace=workspace, name="echo-svc", websocket=True, versions=[
        {"model_version": first, "weight": 80, **row}, {"model_version": second, "weight": 20, **row}])
    shapes_svc = service_create(user=owner, workspace=workspace, name="shapes-svc",
                                versions=[{"model_version": shapes, "weight": 100, **row}])
    iris_svc = service_create(user=owner, workspace=workspace, name="iris-svc",
                              versions=[{"model_version": iris, "weight": 100, **row}])
    for service in (echo_svc, shapes_svc, iris_svc):
        status_of(service, ServiceStatus.RUNNING)
    assert "Service echo-svc started successfully." in service_events(echo_svc)
    assert "Auto-stop switched on, service will be stopped in 1 hour." in service_events(echo_svc)

    key = service_key_create(user=owner, service=echo_svc, name="e2e")[1]
    endpoint = f"{asgi_server.url}/infer/{echo_svc.pk}/"
    headers = {"X-Auth-Token": key}

    # JSON, with the envelope's uuid echoed; the 80/20 split over 100 calls.
    answer = http.post(endpoint, json={"meta": {"uuid": "u-1"}, "data": {"req_data": [{"x": 2, "y": 3}]}},
                       headers=headers).json()
    assert answer["meta"] == {"uuid": "u-1"} and answer["data"]["resp_data"][0]["sum"] == 5
    seen = collections.Counter(http.post(endpoint, json={"data": {"req_data": [{"x": 1, "y": 1}]}},
                                         headers=headers).json()["data"]["resp_data"][0]["version"] for _ in range(100))
    assert abs(seen["0.0.1"] - 80) <= 5 and abs(seen["0.0.2"] - 20) <= 5, seen

    # Server-Sent Events and WebSocket through the gateway.
    with http.stream("POST", endpoint, headers={**headers, "Accept": "text/event-stream"},
                     json={"data": {"req_data": [{"x": 1, "y": 1}, {"x": 5, "y": 5}]}}) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert events == ['data: {"index":0,"sum":2}', 'data: {"index":1,"sum":10}', "data: {}"]
    from websockets.sync.client import connect

    with connect(endpoint.replace("http://", "ws://"), additional_headers=headers, proxy=None) as ws:
        ws.send(json.dumps({"data": {"req_data": [{"x": 20, "y": 22}]}}))
        assert json.loads(ws.recv(timeout=10))["data"]["resp_data"][0]["sum"] == 42

    # Multipart image to the detection-style package, with a user token.
    from apps.accounts.services import api_token_create

    _t, user_key = api_token_create(user=owner, name="cli")
    found = http.post(f"{asgi_server.url}/infer/{shapes_svc.pk}/", headers={"Authorization": f"Token {user_key}"},
                      files={"images": ("box.png", png(255, (50, 40), box=(10, 5, 30, 25)), "image/png")}).json()
    assert found["detection_boxes"] == [[5.0, 10.0, 25.0, 30.0]]

    # KServe V2 with an independent client against the deployed built-in sklearn runtime.
    _v2_checks(asgi_server, iris_svc, api_token_create(user=owner, name="v2")[1])

    # A crashed instance is restarted by the run engine and the service recovers.
    instance = echo_svc.instances.filter(model_version=second).select_related("run").get()
    pid = instance.run.pid
    os.kill(pid, signal.SIGKILL)
    status_of(echo_svc, ServiceStatus.ALARM, timeout=30)
    wait_for(lambda: Run.objects.get(pk=instance.run_id).attempt == 2, timeout=30, message="the restart")
    status_of(echo_svc, ServiceStatus.RUNNING, timeout=60)
    assert any(m.startswith("Service abnormal, unhealthy instances: 1") for m in service_events(echo_svc))
    assert "Service recovered: all 2 instances ready." in service_events(echo_svc)

    # Scale 0.0.1 up to 2 instances and back to 1 while requests keep flowing: none may fail.
    failures, calls, stop = [], [0], threading.Event()

    def traffic():
        with httpx.Client(timeout=30, trust_env=False, headers=headers) as client:
            while not stop.is_set():
                response = client.post(endpoint, json={"data": {"req_data": [{"x": 1, "y": 2, "sleep": 0.05}]}})
                calls[0] += 1
                if response.status_code != 200:
                    failures.append((response.status_code, response.text))

    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        versions = [{"model_version": first, "weight": 80, "instance_count": 2, **row},
                    {"model_version": second, "weight": 20, **row}]
        assert service_update(user=owner, service=echo_svc, versions=versions) == "scaled"
        wait_for(lambda: Run.objects.filter(service_instance__service=echo_svc, ready_at__isnull=False,
                                            status="running").count() == 3, timeout=60, message="a third instance")
        time.sleep(2)
        versions[0]["instance_count"] = 1
        assert service_update(user=owner, service=echo_svc, versions=versions) == "scaled"
        time.sleep(3)  # past ATELIER_DEPLOYMENT_DRAIN_SECONDS: the sweep now stops the drained instance
        assert deployment_sweep()["drained"] == 1
        wait_for(lambda: echo_svc.instances.count() == 2, timeout=60, message="the drained instance to go")
        time.sleep(1)
    finally:
        stop.set()
        thread.join(timeout=60)
    assert failures == [] and calls[0] > 20, (failures, calls)

    # The instances' own CPU and memory reports feed the monitoring charts.
    from apps.deployment.monitoring import resource_series

    usage = resource_series(InferenceService.objects.get(pk=echo_svc.pk))
    assert usage["cpu_usage"] and usage["mem_usage"]
    assert all(0 <= value <= 100 for points in usage["mem_usage"].values() for _t, value in points)

    for service in (echo_svc, shapes_svc, iris_svc):
        service_stop(user=owner, service=service)
    for service in (echo_svc, shapes_svc, iris_svc):
        status_of(service, ServiceStatus.STOPPED, timeout=60)
    assert "Service stopped." in service_events(echo_svc)


def _v2_checks(asgi_server, service, token):
    import numpy as np
    import tritonclient.http as triton

    client = triton.InferenceServerClient(url=f"{asgi_server.url.removeprefix('http://')}/infer/{service.pk}")
    headers = {"Authorization": f"Token {token}"}
    try:
        assert client.is_server_ready(headers=headers) and client.is_model_ready("iris", "0.0.1", headers=headers)
        data = np.asarray([[6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
        tensor = triton.InferInput("input", [1, 4], "FP32")
        tensor.set_data_from_numpy(data)
        result = client.infer("iris", [tensor], headers=headers)
        assert [v.decode() for v in result.as_numpy("predict")] == ["virginica"]
    finally:
        client.close()


def test_a_failing_package_makes_the_service_abnormal_with_the_reason(deploy_worker, owner, workspace, models_bucket,
                                                                      cpu_flavor, local_pool, tmp_path, settings):
    settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS = 0
    deploy_worker(concurrency=2)
    root = fixture_package("echo", tmp_path)
    (root / "model" / "customize_service.py").write_text(
        "from model_service.model_service import SingleNodeService\n\n"
        "class Broken(SingleNodeService):\n"
        "    def __init__(self, model_name, model_path):\n"
        "        raise RuntimeError('weights file is corrupt')\n")
    version = imported(services.ai_app_create(user=owner, workspace=workspace, name="broken",
                                              source_uri=upload_package(root, "models", "broken")))
    service = service_create(user=owner, workspace=workspace, name="broken-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    service = status_of(service, ServiceStatus.ABNORMAL, timeout=60)
    assert service.status_reason == "Model load failed: RuntimeError: weights file is corrupt"
    assert "Service broken-svc started failed. Model load failed: RuntimeError: weights file is corrupt." in \
        service_events(service)


def test_batch_service_over_a_folder_writes_the_documented_outputs(deploy_worker, owner, workspace, models_bucket,
                                                                   cpu_flavor, local_pool, tmp_path):
    from apps.deployment.batch import batch_service_create
    from apps.storage.services import bucket_create

    deploy_worker(concurrency=2)
    shapes = imported(services.ai_app_create(user=owner, workspace=workspace, name="shapes", deploy_types=["batch"],
                                             source_uri=upload_package(fixture_package("shapes", tmp_path), "models",
                                                                       "shapes")))
    bucket_create(user=owner, workspace=workspace, name="data")
    storage = get_storage()
    import io

    storage.save(StoragePath("data", "in/a.png"), io.BytesIO(png(255, (20, 20), box=(2, 3, 6, 9))))
    storage.save(StoragePath("data", "in/sub/b.png"), io.BytesIO(png(255, (20, 20), box=(0, 0, 4, 4))))
    storage.save(StoragePath("data", "in/notes.txt"), io.BytesIO(b"not an image"))
    storage.mkdir(StoragePath("data", "out"))
    service = batch_service_create(user=owner, workspace=workspace, name="batch-1", model_version=shapes,
                                   input_uri="storage://data/in", output_uri="storage://data/out",
                                   flavor=cpu_flavor, pool=local_pool)
    service = status_of(service, ServiceStatus.COMPLETED, timeout=90)
    task = service.task_id
    manifest = storage.open(StoragePath("data", f"out/infer-result-{task}.manifest")).read().decode()
    lines = [json.loads(line) for line in manifest.splitlines()]
    assert lines == [
        {"source": "storage://data/in/a.png", "result": "SUCCESSFUL",
         "inference-loc": f"storage://data/out/infer-result-{task}/a.png_result.txt"},
        {"source": "storage://data/in/notes.txt", "result": "FAILED", "error_message": "notes.txt is not an image"},
        {"source": "storage://data/in/sub/b.png", "result": "SUCCESSFUL",
         "inference-loc": f"storage://data/out/infer-result-{task}/sub/b.png_result.txt"},
    ]
    result = json.loads(storage.open(StoragePath("data", f"out/infer-result-{task}/a.png_result.txt")).read())
    assert result["detection_boxes"] == [[3.0, 2.0, 9.0, 6.0]]
    assert service.progress == {"total": 3, "done": 2, "failed": 1}
    assert any(m.startswith("Service stopped automatically after running. 2 succeeded, 1 failed of 3 inputs")
               for m in service_events(service))


# A custom server: answers POST /predict with the doubled value, /health, on $PORT.
CUSTOM_SERVER = """
import http.server, json, os
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        answer = json.dumps({"double": body["value"] * 2, "threshold": os.environ.get("THRESHOLD")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


def test_a_custom_command_serves_through_the_gateway(deploy_worker, asgi_server, gateway, owner, workspace,
                                                     cpu_flavor, local_pool):
    import sys

    deploy_worker(concurrency=2)
    version = imported(services.ai_app_create(
        user=owner, workspace=workspace, name="custom", source_type="command",
        command=[sys.executable, "-c", CUSTOM_SERVER],
        apis=[{"url": "/predict", "method": "POST", "request": {"Content-type": "application/json"}}],
        health={"check_method": "HTTP", "url": "/health", "period_seconds": 5, "failure_threshold": 3}))
    service = service_create(user=owner, workspace=workspace, name="custom-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool,
         "env": {"THRESHOLD": "0.5"}}])
    status_of(service, ServiceStatus.RUNNING, timeout=60)
    key = service_key_create(user=owner, service=service, name="k")[1]
    answer = http.post(f"{asgi_server.url}/infer/{service.pk}/predict", json={"value": 21},
                       headers={"X-Auth-Token": key})
    assert answer.json() == {"double": 42, "threshold": "0.5"}
    wrong = http.get(f"{asgi_server.url}/infer/{service.pk}/predict", headers={"X-Auth-Token": key})
    assert wrong.status_code == 405 and wrong.json()["error_code"] == "ModelArts.2803"
    service_stop(user=owner, service=service)
    status_of(service, ServiceStatus.STOPPED, timeout=60)
