"""The model server in-process: package loading, the ModelArts predict API, SSE, WebSocket,
KServe V2 (JSON and binary tensors) and the built-in runtimes."""
from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest

from tests.deployment.packages import fixture_package, png, sklearn_package, torch_classifier_package

from atelier_modelserver.app import build_app  # noqa: E402  (path set up by packages.py)
from atelier_modelserver.loader import LoadedModel, model_load, package_root  # noqa: E402

with warnings.catch_warnings():
    # Starlette nudges towards httpx2 for its test client; httpx is what the project pins.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402


def serve(root, name="echo", version="0.0.1") -> TestClient:
    model = LoadedModel(name=name, version=version, package_dir=package_root(root))
    model_load(model)
    assert model.error == ""
    return TestClient(build_app(model))


@pytest.fixture
def echo(tmp_path):
    return serve(fixture_package("echo", tmp_path))


def test_health_and_json_predict_with_uuid_echo(echo):
    assert echo.get("/health").json() == {"health": "true"}
    body = {"meta": {"uuid": "10eb0091"}, "data": {"req_data": [{"x": 1, "y": 2}, {"x": 0.5, "y": 0.25}]}}
    response = echo.post("/", json=body)
    assert response.status_code == 200
    result = response.json()
    assert result["meta"] == {"uuid": "10eb0091"}
    assert [r["sum"] for r in result["data"]["resp_data"]] == [3, 0.75]
    # Set by the server although the service's __init__ never calls super().__init__.
    assert result["model_name"] == "echo"


def test_refused_payload_is_a_400_with_the_models_message(echo):
    response = echo.post("/", json={"data": {"req_data": [{"x": 1}]}})
    assert response.status_code == 400
    assert response.json() == {"error_code": "MR.0101", "error_msg": "record 0 needs x and y"}
    response = echo.post("/", content=b"not json", headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error_msg"].startswith("the body is not valid JSON")


def test_get_on_a_post_api_is_method_not_allowed(echo):
    response = echo.get("/")
    assert response.status_code == 405
    assert response.json() == {"error_code": "ModelArts.2803", "error_msg": "Method Not Allowed: this API takes POST"}


def test_sse_streams_one_event_per_item_then_done(echo):
    body = {"data": {"req_data": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}}
    with echo.stream("POST", "/", json=body, headers={"accept": "text/event-stream"}) as response:
        assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
        text = "".join(response.iter_text())
    assert text == ('data: {"index":0,"sum":2}\n\n'
                    'data: {"index":1,"sum":4}\n\n'
                    "event: done\ndata: {}\n\n")


def test_websocket_text_frames_are_requests(echo):
    with echo.websocket_connect("/") as ws:
        ws.send_text(json.dumps({"data": {"req_data": [{"x": 2, "y": 3}]}}))
        assert ws.receive_json()["data"]["resp_data"][0]["sum"] == 5
        ws.send_text("{broken")
        assert ws.receive_json()["error_code"] == "MR.0101"


def test_multipart_images_reach_the_service_as_field_filename_files(tmp_path):
    client = serve(fixture_package("shapes", tmp_path), name="shapes")
    response = client.post("/", files={"images": ("box.png", png(255, (40, 30), box=(5, 4, 15, 20)), "image/png")})
    assert response.status_code == 200
    assert response.json() == {"detection_classes": ["shape"], "detection_boxes": [[4.0, 5.0, 20.0, 15.0]],
                               "detection_scores": [0.99]}
    response = client.post("/", files={"images": ("notes.txt", b"hello", "text/plain")})
    assert response.status_code == 400
    assert response.json()["error_msg"] == "notes.txt is not an image"


def test_v2_server_and_model_endpoints(echo):
    assert echo.get("/v2").json() == {"name": "atelier-modelserver", "version": "1",
                                      "extensions": ["binary_tensor_data", "model_version"]}
    assert echo.get("/v2/health/live").json() == {"live": True}
    assert echo.get("/v2/health/ready").json() == {"ready": True}
    assert echo.get("/v2/models/echo/ready").json() == {"name": "echo", "ready": True}
    assert echo.get("/v2/models/echo/versions/0.0.1/ready").status_code == 200
    assert echo.get("/v2/models/echo/versions/9.9.9/ready").status_code == 404
    assert echo.get("/v2/models/other").json() == {"error": "Model with name other does not exist."}
    meta = echo.get("/v2/models/echo").json()
    assert meta == {"name": "echo", "versions": ["0.0.1"], "platform": "atelier_mindspore",
                    "inputs": [{"name": "data", "datatype": "BYTES", "shape": [1]}],
                    "outputs": [{"name": "data", "datatype": "BYTES", "shape": [1]}]}


def test_builtin_sklearn_runtime_json_and_v2(tmp_path):
    client = serve(sklearn_package(tmp_path), name="iris", version="0.0.2")
    records = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
               {"sepal_length": 6.7, "sepal_width": 3.0, "petal_length": 5.2, "petal_width": 2.3}]
    result = client.post("/", json={"data": {"req_data": records}}).json()["data"]["resp_data"]
    assert [r["predict_result"] for r in result] == ["setosa", "virginica"]
    assert set(result[0]["scores"]) == {"setosa", "versicolor", "virginica"}

    refused = client.post("/", json={"data": {"req_data": [{"sepal_length": 1}]}})
    assert refused.status_code == 400
    assert refused.json()["error_msg"].startswith("record 0 has no value for feature 'sepal_width'")

    request = {"id": "r1", "inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32",
                                       "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}],
               "outputs": [{"name": "predict"}]}
    answer = client.post("/v2/models/iris/versions/0.0.2/infer", json=request).json()
    assert answer == {"model_name": "iris", "model_version": "0.0.2", "id": "r1",
                      "outputs": [{"name": "predict", "datatype": "BYTES", "shape": [2],
                                   "data": ["setosa", "virginica"]}]}
    bad = client.post("/v2/models/iris/infer", json={"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32",
                                                                 "data": [1, 2, 3]}]})
    assert bad.status_code == 400
    assert bad.json() == {"error": "the model expects 4 features, got 3"}


def test_v2_binary_tensor_extension_round_trip(tmp_path):
    client = serve(sklearn_package(tmp_path), name="iris")
    raw = np.asarray([[5.1, 3.5, 1.4, 0.2]], dtype="<f4").tobytes()
    head = json.dumps({"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32",
                                   "parameters": {"binary_data_size": len(raw)}}],
                       "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}]}).encode()
    response = client.post("/v2/models/iris/infer", content=head + raw,
                           headers={"Inference-Header-Content-Length": str(len(head)),
                                    "content-type": "application/octet-stream"})
    assert response.status_code == 200
    split = int(response.headers["inference-header-content-length"])
    header = json.loads(response.content[:split])
    assert header["outputs"][0]["shape"] == [1, 3]
    probabilities = np.frombuffer(response.content[split:], dtype="<f8")
    assert probabilities.argmax() == 0 and abs(probabilities.sum() - 1) < 1e-6


def test_builtin_torch_image_classification(tmp_path):
    client = serve(torch_classifier_package(tmp_path), name="brightness")
    result = client.post("/", files={"images": ("white.png", png(250), "image/png")}).json()
    assert result["predicted_label"] == "light"
    assert [label for label, _ in result["scores"]] == ["light", "dark"]
    both = client.post("/", files=[("images", ("a.png", png(5), "image/png")),
                                   ("images", ("b.png", png(250), "image/png"))]).json()
    assert [(r["file"], r["predicted_label"]) for r in both["results"]] == [("a.png", "dark"), ("b.png", "light")]

    data = png(5)
    blob = struct.pack("<I", len(data)) + data
    head = json.dumps({"inputs": [{"name": "images", "shape": [1], "datatype": "BYTES",
                                   "parameters": {"binary_data_size": len(blob)}}],
                       "outputs": [{"name": "label"}]}).encode()
    answer = client.post("/v2/models/brightness/infer", content=head + blob,
                         headers={"Inference-Header-Content-Length": str(len(head))}).json()
    assert answer["outputs"] == [{"name": "label", "datatype": "INT64", "shape": [1], "data": [0]}]


def test_a_package_that_cannot_load_reports_why(tmp_path):
    root = fixture_package("echo", tmp_path)
    (root / "model" / "customize_service.py").write_text("import no_such_module_here\n")
    model = LoadedModel(name="echo", version="0.0.1", package_dir=root)
    model_load(model)
    assert model.error == "ModuleNotFoundError: No module named 'no_such_module_here'"
    client = TestClient(build_app(model))
    assert client.get("/health").status_code == 503
    assert client.post("/", json={}).json() == {
        "error_code": "MR.0100",
        "error_msg": "not ready: ModuleNotFoundError: No module named 'no_such_module_here'"}


def test_container_launcher_publishes_the_run_port_and_passes_only_chosen_variables():
    from atelier_modelserver.container import docker_argv

    argv = docker_argv(docker="/usr/bin/docker", image="registry.local/team/server:1.0", container_port=8080,
                       host_port=40123, name="atelier-run-7-1", env={"MODEL_NAME": "m", "THRESHOLD": "0.5"},
                       command=["sh", "/home/mind/run.sh"])
    assert argv == ["/usr/bin/docker", "run", "--rm", "--init", "--name", "atelier-run-7-1", "--user", "1000:100",
                    "-p", "40123:8080", "-e", "MODEL_NAME=m", "-e", "THRESHOLD=0.5",
                    "registry.local/team/server:1.0", "sh", "/home/mind/run.sh"]
