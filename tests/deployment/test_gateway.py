"""The inference gateway over real HTTP (console.asgi in uvicorn) against model servers on
loopback: credentials, limits, routing (weights, rules, pinned V2 versions), streaming, WebSocket,
errors and call statistics. Instance runs are marked ready by hand (`attach_instances`); the
real-worker path is in test_worker.py."""
from __future__ import annotations

import collections
import hashlib
import http.server as http_server
import json
import threading
import time

import httpx
import pytest

from apps.accounts.services import api_token_create
from apps.deployment.models import CallStat
from apps.deployment.routing import java_hash, java_mod
from apps.deployment.keys import service_key_create, service_key_revoke
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances, make_version
from tests.deployment.packages import fixture_package

pytestmark = pytest.mark.django_db(transaction=True)

# One client for the module: a new httpx client per call costs a TLS context (~0.3 s).
http = httpx.Client(timeout=30, trust_env=False)


class Recorder:
    """A plain HTTP upstream that records what reaches it and answers {"ok": true}."""

    def __init__(self):
        self.requests: list[dict] = []
        recorder = self

        class Handler(http_server.BaseHTTPRequestHandler):
            def _handle(self):
                length = int(self.headers.get("content-length") or 0)
                recorder.requests.append({"method": self.command, "path": self.path, "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                body = b'{"ok": true}'
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _handle

            def log_message(self, *args):
                pass

        self.server = http_server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def recorder():
    server = Recorder()
    yield server
    server.close()


def deploy(owner, workspace, versions, flavor, pool, **options):
    rows = [{"model_version": v, "weight": w, "flavor": flavor, "pool": pool} for v, w in versions]
    return service_create(user=owner, workspace=workspace, name=options.pop("name", "svc"), versions=rows, **options)


@pytest.fixture
def echo_service(owner, workspace, echo_version, cpu_flavor, local_pool, model_servers, tmp_path):
    server = model_servers(fixture_package("echo", tmp_path / "srv"), name="echo", version="0.0.1")
    service = deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool)
    return attach_instances(service, {echo_version.pk: [server.endpoint]})


@pytest.fixture
def key(owner, echo_service):
    return service_key_create(user=owner, service=echo_service, name="ci")[1]


def url(base, service, path="/"):
    return f"{base}/infer/{service.pk}{path}"


BODY = {"data": {"req_data": [{"x": 1, "y": 2}]}}


def test_service_key_and_user_token_both_call_the_service(asgi_server, gateway, owner, echo_service, key):
    response = http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": key})
    assert response.status_code == 200
    assert response.json()["data"]["resp_data"][0]["sum"] == 3
    assert response.headers["x-model-version"] == "0.0.1"
    _token, user_key = api_token_create(user=owner, name="cli")
    response = http.post(f"{asgi_server.url}/v1/infers/{echo_service.pk}/", json=BODY,
                          headers={"Authorization": f"Token {user_key}"})
    assert response.status_code == 200


def test_missing_or_wrong_credentials_are_401_and_nothing_is_forwarded(asgi_server, gateway, owner, workspace,
                                                                       echo_version, cpu_flavor, local_pool, recorder,
                                                                       outsider):
    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool),
                               {echo_version.pk: [recorder.endpoint]})
    other = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool, name="other"),
                             {echo_version.pk: [recorder.endpoint]})
    other_key = service_key_create(user=owner, service=other, name="other")[1]
    _t, outsider_token = api_token_create(user=outsider, name="cli")
    cases = [
        ({}, 401, "APIG.0301", "Incorrect authentication information: no token. Send X-Auth-Token: <key> or "
                               "Authorization: Token <key>."),
        ({"X-Auth-Token": "ask_wrong"}, 401, "APIG.0301",
         "Incorrect authentication information: the token is invalid, expired or revoked."),
        ({"X-Auth-Token": other_key}, 401, "APIG.0301",
         "Incorrect authentication information: this API key belongs to another service."),
        ({"Authorization": f"Token {outsider_token}"}, 404, "APIG.0101",
         "The API does not exist or has not been published in the environment: no such service."),
    ]
    for headers, status, code, message in cases:
        response = http.post(url(asgi_server.url, service), json=BODY, headers=headers)
        assert (response.status_code, response.json()) == (status, {"error_code": code, "error_msg": message})
    assert recorder.requests == []
    # The right key works, and the caller's credentials never reach the instance.
    own_key = service_key_create(user=owner, service=service, name="mine")[1]
    assert http.post(url(asgi_server.url, service, "/?a=1"), json=BODY, headers={"X-Auth-Token": own_key}).status_code == 200
    forwarded = recorder.requests[0]
    assert forwarded["path"] == "/?a=1" and json.loads(forwarded["body"]) == BODY
    names = {name.lower() for name in forwarded["headers"]}
    assert "x-auth-token" not in names and "x-request-id" in names


def test_a_revoked_key_is_refused(asgi_server, gateway, owner, echo_service, settings):
    api_key, secret = service_key_create(user=owner, service=echo_service, name="temp")
    assert http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": secret}).status_code == 200
    service_key_revoke(user=owner, key=api_key)
    gateway.invalidate()  # the cache would forget it within ATELIER_GATEWAY_CACHE_SECONDS anyway
    response = http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": secret})
    assert response.status_code == 401


def test_oversized_body_is_413(asgi_server, gateway, owner, workspace, echo_version, cpu_flavor, local_pool, recorder,
                               settings):
    settings.ATELIER_GATEWAY_MAX_BODY_BYTES = 1000
    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool),
                               {echo_version.pk: [recorder.endpoint]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    response = http.post(url(asgi_server.url, service), content=b"x" * 1001, headers={"X-Auth-Token": secret})
    assert response.status_code == 413
    assert response.json() == {"error_code": "APIG.0201",
                               "error_msg": "Request entity too large: 1001 bytes; the limit is 0.000953674 MB."}

    def chunks():
        for _ in range(3):
            yield b"y" * 600

    response = http.post(url(asgi_server.url, service), content=chunks(), headers={"X-Auth-Token": secret})
    assert response.status_code == 413
    assert recorder.requests == []


def test_model_refusal_unknown_service_method_and_no_instance(asgi_server, gateway, owner, workspace, echo_service, key,
                                                              echo_version, cpu_flavor, local_pool):
    refused = http.post(url(asgi_server.url, echo_service), json={"data": {"req_data": [{"x": 1}]}},
                         headers={"X-Auth-Token": key})
    assert (refused.status_code, refused.json()) == (400, {"error_code": "MR.0101", "error_msg": "record 0 needs x and y"})
    get = http.get(url(asgi_server.url, echo_service), headers={"X-Auth-Token": key})
    assert (get.status_code, get.json()["error_code"]) == (405, "ModelArts.2803")
    missing = http.post(f"{asgi_server.url}/infer/00000000-0000-0000-0000-000000000000/", json=BODY,
                         headers={"X-Auth-Token": key})
    assert (missing.status_code, missing.json()["error_code"]) == (404, "APIG.0101")
    idle = deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool, name="idle")
    idle_key = service_key_create(user=owner, service=idle, name="k")[1]
    response = http.post(url(asgi_server.url, idle), json=BODY, headers={"X-Auth-Token": idle_key})
    assert response.status_code == 503
    assert response.json() == {"error_code": "ModelArts.4503", "error_msg": 'Failed to find backend service: no '
                                                                          'instance of service "idle" is ready '
                                                                          '(status: deploying).'}


def test_timeout_is_504_naming_the_limit(asgi_server, gateway, owner, echo_service, key, settings):
    settings.ATELIER_GATEWAY_TIMEOUT_SECONDS = 1
    response = http.post(url(asgi_server.url, echo_service), json={"data": {"req_data": [{"x": 1, "y": 1, "sleep": 2}]}},
                          headers={"X-Auth-Token": key}, timeout=10)
    assert response.status_code == 504
    assert response.json() == {"error_code": "ModelArts.4503",
                               "error_msg": "Backend service respond timeout: no answer within 1 s, the limit of one "
                                            "prediction."}


def test_refused_connection_is_502(asgi_server, gateway, owner, workspace, echo_version, cpu_flavor, local_pool):
    from tests.harness import free_port

    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool),
                               {echo_version.pk: [f"127.0.0.1:{free_port()}"]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    response = http.post(url(asgi_server.url, service), json=BODY, headers={"X-Auth-Token": secret})
    assert (response.status_code, response.json()["error_code"]) == (502, "ModelArts.4302")


@pytest.fixture
def two_versions(owner, workspace, echo_uri, echo_version, model_servers, tmp_path):
    second = make_version(owner, workspace, echo_uri, app=echo_version.app)
    servers = {
        echo_version.pk: model_servers(fixture_package("echo", tmp_path / "a"), name="echo", version="0.0.1"),
        second.pk: model_servers(fixture_package("echo", tmp_path / "b"), name="echo", version="0.0.2"),
    }
    return echo_version, second, servers


def test_weights_split_traffic_80_20(asgi_server, gateway, owner, workspace, two_versions, cpu_flavor, local_pool):
    first, second, servers = two_versions
    service = attach_instances(deploy(owner, workspace, [(first, 80), (second, 20)], cpu_flavor, local_pool),
                               {pk: [s.endpoint] for pk, s in servers.items()})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    seen = collections.Counter()
    with httpx.Client(headers={"X-Auth-Token": secret}) as client:
        for _ in range(100):
            seen[client.post(url(asgi_server.url, service), json=BODY).headers["x-model-version"]] += 1
    assert abs(seen["0.0.1"] - 80) <= 5 and abs(seen["0.0.2"] - 20) <= 5, seen

    gateway.stats.flush()
    totals = {row.version_label: (row.total, row.success, row.failed)
              for row in CallStat.objects.filter(service=service)}
    assert totals == {"echo 0.0.1": (seen["0.0.1"], seen["0.0.1"], 0), "echo 0.0.2": (seen["0.0.2"], seen["0.0.2"], 0)}


def test_header_rules_route_deterministically_and_inject_a_header(asgi_server, gateway, owner, workspace, two_versions,
                                                                  cpu_flavor, local_pool, recorder):
    first, second, servers = two_versions
    rules = [{"condition": "#HEADER_uid.hashCode() % 100 < 10", "version": second.pk},
             {"condition": "#HEADER_version == '0.0.1'", "version": first.pk}]
    service = attach_instances(deploy(owner, workspace, [(first, 100), (second, 0)], cpu_flavor, local_pool,
                                      rules=rules), {pk: [s.endpoint] for pk, s in servers.items()})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    # Hex ids spread over positive and negative hashes (a negative hash % 100 is negative, as in Java).
    uids = [hashlib.md5(str(n).encode()).hexdigest()[:12] for n in range(200)]
    expected = {uid: "0.0.2" if java_mod(java_hash(uid), 100) < 10 else "0.0.1" for uid in uids}
    with httpx.Client(headers={"X-Auth-Token": secret}) as client:
        got = {uid: client.post(url(asgi_server.url, service), json=BODY, headers={"uid": uid}).headers["x-model-version"]
               for uid in uids}
    assert got == expected
    assert 0 < sum(1 for v in got.values() if v == "0.0.2") < 200

    # A rule's config item becomes a header on the forwarded request.
    routed = attach_instances(deploy(owner, workspace, [(first, 100)], cpu_flavor, local_pool, name="hdr",
                                     rules=[{"condition": "#USER_NAME == 'alice'", "version": first.pk,
                                             "header_name": "testkey1", "header_value": "testvalue1"}]),
                              {first.pk: [recorder.endpoint]})
    _t, token = api_token_create(user=owner, name="cli")
    http.post(url(asgi_server.url, routed), json=BODY, headers={"Authorization": f"Token {token}"})
    assert recorder.requests[-1]["headers"]["testkey1"] == "testvalue1"


def test_traffic_limit_and_key_rate_limit_are_429(asgi_server, gateway, owner, workspace, echo_version, cpu_flavor,
                                                  local_pool, recorder):
    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool, traffic_limit=3),
                               {echo_version.pk: [recorder.endpoint]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    with httpx.Client(headers={"X-Auth-Token": secret}) as client:
        statuses = [client.post(url(asgi_server.url, service), json=BODY).status_code for _ in range(10)]
    assert statuses.count(429) >= 4 and 3 <= statuses.count(200) <= 6, statuses
    refused = next(r for r in [http.post(url(asgi_server.url, service), json=BODY, headers={"X-Auth-Token": secret})
                               for _ in range(5)] if r.status_code == 429)
    assert refused.json() == {"error_code": "ModelArts.4206", "error_msg": "The API request rate is over the "
                                                                           "configured limit: the service allows 3 "
                                                                           "requests per second."}

    limited = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool, name="keyed"),
                               {echo_version.pk: [recorder.endpoint]})
    slow_key = service_key_create(user=owner, service=limited, name="slow", rate_limit=2)[1]
    if time.time() % 60 > 55:  # keep the three calls inside one minute window
        time.sleep(61 - time.time() % 60)
    with httpx.Client(headers={"X-Auth-Token": slow_key}) as client:
        statuses = [client.post(url(asgi_server.url, limited), json=BODY).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


def test_sse_streams_through_the_gateway_without_buffering(asgi_server, gateway, echo_service, key):
    body = {"data": {"req_data": [{"x": 1, "y": 1}, {"x": 2, "y": 2, "pause": 1.5}]}}
    started = time.monotonic()
    arrivals = []
    with http.stream("POST", url(asgi_server.url, echo_service), json=body, timeout=10,
                      headers={"X-Auth-Token": key, "Accept": "text/event-stream"}) as response:
        assert response.headers["content-type"] == "text/event-stream;charset=UTF-8"
        for line in response.iter_lines():
            if line.startswith("data: {\"index\""):
                arrivals.append((time.monotonic() - started, json.loads(line[6:])))
    assert [event for _t, event in arrivals] == [{"index": 0, "sum": 2}, {"index": 1, "sum": 4}]
    assert arrivals[0][0] < 1.0 and arrivals[1][0] >= 1.5


def test_websocket_relay_and_refusals(asgi_server, gateway, owner, workspace, echo_version, cpu_flavor, local_pool,
                                      model_servers, tmp_path, echo_service, key):
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    server = model_servers(fixture_package("echo", tmp_path / "ws"), name="echo", version="0.0.1")
    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool, name="ws",
                                      websocket=True), {echo_version.pk: [server.endpoint]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    ws_url = url(asgi_server.url, service).replace("http://", "ws://")
    with connect(ws_url, additional_headers={"X-Auth-Token": secret}, proxy=None) as ws:
        ws.send(json.dumps({"data": {"req_data": [{"x": 2, "y": 5}]}}))
        assert json.loads(ws.recv(timeout=5))["data"]["resp_data"][0]["sum"] == 7
        ws.send(b"\x89PNG not really")
        assert json.loads(ws.recv(timeout=5))["error_code"] == "MR.0101"
    with pytest.raises(InvalidStatus) as caught:
        connect(ws_url, proxy=None)
    assert caught.value.response.status_code == 401
    with pytest.raises(InvalidStatus) as caught:
        connect(url(asgi_server.url, echo_service).replace("http://", "ws://"), additional_headers={"X-Auth-Token": key},
                proxy=None)
    assert caught.value.response.status_code == 403
    assert b"Upgrade to WebSocket" in caught.value.response.body


def test_kserve_v2_through_the_gateway_with_tritonclient(asgi_server, gateway, owner, workspace, iris_uri, cpu_flavor,
                                                         local_pool, model_servers, tmp_path):
    import numpy as np
    import tritonclient.http as triton

    from tests.deployment.packages import sklearn_package

    version = make_version(owner, workspace, iris_uri, name="iris")
    server = model_servers(sklearn_package(tmp_path / "srv"), name="iris", version="0.0.1")
    service = attach_instances(deploy(owner, workspace, [(version, 100)], cpu_flavor, local_pool, name="iris-svc"),
                               {version.pk: [server.endpoint]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    base = asgi_server.url.removeprefix("http://")
    client = triton.InferenceServerClient(url=f"{base}/infer/{service.pk}")
    headers = {"X-Auth-Token": secret}
    assert client.is_server_live(headers=headers) and client.is_server_ready(headers=headers)
    assert client.is_model_ready("iris", headers=headers)
    assert client.get_server_metadata(headers=headers)["name"] == "atelier-modelserver"
    meta = client.get_model_metadata("iris", headers=headers)
    assert meta["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 4]}]
    data = np.asarray([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float64)
    tensor = triton.InferInput("input", list(data.shape), "FP64")
    tensor.set_data_from_numpy(data, binary_data=True)
    result = client.infer("iris", [tensor], model_version="0.0.1", request_id="r-7", headers=headers,
                          outputs=[triton.InferRequestedOutput("predict", binary_data=True),
                                   triton.InferRequestedOutput("probabilities", binary_data=False)])
    assert [v.decode() for v in result.as_numpy("predict")] == ["setosa", "virginica"]
    assert result.as_numpy("probabilities").shape == (2, 3)
    assert result.get_response()["id"] == "r-7" and result.get_response()["model_version"] == "0.0.1"
    with pytest.raises(Exception) as caught:
        client.infer("iris", [tensor], headers={"X-Auth-Token": "ask_wrong"})
    assert "APIG.0301" in str(caught.value)
    client.close()


def test_an_instance_that_keeps_failing_trips_the_breaker(asgi_server, gateway, echo_service, key, settings):
    settings.ATELIER_GATEWAY_BREAKER_FAILURES = 3
    settings.ATELIER_GATEWAY_BREAKER_SECONDS = 1
    crash = {"data": {"req_data": [{"x": 1, "y": 1, "boom": True}]}}
    statuses = [http.post(url(asgi_server.url, echo_service), json=crash, headers={"X-Auth-Token": key}).status_code
                for _ in range(3)]
    assert statuses == [500, 500, 500]
    held = http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": key})
    assert held.status_code == 503
    assert held.json()["error_msg"].startswith("Due to self protection, the backend service is disconnected")
    time.sleep(1.1)
    # After the pause one request probes the instance; it answers, so traffic flows again.
    assert http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": key}).status_code == 200
    assert http.post(url(asgi_server.url, echo_service), json=BODY, headers={"X-Auth-Token": key}).status_code == 200


def test_the_path_and_query_reach_the_instance_as_the_client_encoded_them(asgi_server, gateway, owner, workspace,
                                                                          echo_version, cpu_flavor, local_pool,
                                                                          recorder):
    service = attach_instances(deploy(owner, workspace, [(echo_version, 100)], cpu_flavor, local_pool),
                               {echo_version.pk: [recorder.endpoint]})
    secret = service_key_create(user=owner, service=service, name="k")[1]
    http.post(f"{asgi_server.url}/infer/{service.pk}/files/a%20b%2Fc?q=x%26y", json=BODY,
              headers={"X-Auth-Token": secret})
    assert recorder.requests[-1]["path"] == "/files/a%20b%2Fc?q=x%26y"
