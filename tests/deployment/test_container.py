"""Custom container images for real: Docker on this machine, a real Celery worker, the gateway.

An AI application from an image (built here with `docker import`, no registry) with a model
folder is deployed as an online service and called through the authenticated gateway (JSON,
SSE, WebSocket); its container runs as uid 1000 / gid 100 with the folder's model/ read-only at
/home/mind/model and ModelArts' port 8080 published on the run's port; its EXEC health check runs
through `docker exec` and restarts an instance that turns unhealthy; a container killed with
`docker kill` is restarted by the engine, and one whose launcher was killed outright is removed
by the next attempt; stopping the service removes the containers. An image
that is not on the worker (and cannot be pulled: there is no registry) fails the version's
import, or, when it disappears after the import, the service, each with the reason. A batch
service runs the image (with its model folder) over a storage folder. An image declared HTTPS
(serving a certificate generated here) is called and health-checked over TLS, and either
protocol mismatch answers ModelArts.4503 with a clear message; a container burning a core shows
that in its instance's CPU usage.

Needs a Docker daemon: skipped without one, failed with ATELIER_TEST_DOCKER=required (CI).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess

import httpx
import pytest

from apps.core.services import events_for
from apps.deployment import services
from apps.deployment.choices import ModelStatus, ServiceStatus
from apps.deployment.keys import service_key_create
from apps.deployment.models import AiAppVersion
from apps.deployment.serving import service_create, service_stop
from apps.runtime.logstream import log_read
from apps.runtime.models import Run
from tests.deployment.conftest import service_events, status_of, upload_package, wait_for
from tests.deployment.dockerimage import test_image

# docker_daemon first: without Docker the tests skip (or fail) before a worker is started.
pytestmark = [pytest.mark.usefixtures("docker_daemon"), pytest.mark.docker, pytest.mark.worker, pytest.mark.slow,
              pytest.mark.django_db(transaction=True)]

http = httpx.Client(timeout=30, trust_env=False)
# An image no registry has (the pull fails at once without network, or with "not found" with one).
ABSENT_IMAGE = "atelier-test/not-here:0.0.0"


@pytest.fixture(scope="session")
def echo_image(docker_daemon) -> str:
    """The test image's tag (built once; reused while the builder and server are unchanged)."""
    return test_image(docker_daemon)


@pytest.fixture
def docker(docker_daemon):
    """`docker(*args)` → CompletedProcess; containers of this test's runs are removed afterwards
    (a leftover is a failure of the code under test, but must not break the next run)."""
    def run(*args, check=True):
        done = subprocess.run([docker_daemon, *args], capture_output=True, text=True, timeout=60)
        if check:
            assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
        return done

    yield run
    for run_id in Run.objects.values_list("pk", flat=True):
        ids = run("ps", "-aq", "--filter", f"label=atelier.run={run_id}", check=False).stdout.split()
        if ids:
            run("rm", "--force", *ids, check=False)


def containers_of(docker, run: Run) -> list[dict]:
    """`docker inspect` of the containers (running or not) labelled with this run."""
    ids = docker("ps", "-aq", "--filter", f"label=atelier.run={run.pk}").stdout.split()
    return json.loads(docker("inspect", *ids).stdout) if ids else []


def running_container(docker, run: Run) -> dict | None:
    found = [c for c in containers_of(docker, run) if c["State"]["Running"]]
    return found[0] if found else None


def serving_again(service, run: Run, *, attempt: int, gateway) -> None:
    """Wait until the engine restarted `run` as `attempt`, that attempt is ready and the service
    Running again; then drop the gateway's cached routes (they may still name the old port)."""
    wait_for(lambda: Run.objects.filter(pk=run.pk, attempt=attempt, ready_at__isnull=False).exists(), timeout=90,
             message=f"attempt {attempt} of the instance to be ready")
    status_of(service, ServiceStatus.RUNNING)
    gateway.invalidate()


def imported(version, status=ModelStatus.NORMAL) -> AiAppVersion:
    return wait_for(lambda: AiAppVersion.objects.filter(pk=version.pk, status=status).first(), timeout=60,
                    message=f"{version} to be {status}")


def version_events(version) -> list[str]:
    return list(events_for(version).values_list("message", flat=True))


def test_an_image_serves_through_the_gateway_with_the_modelarts_contract(
        deploy_worker, asgi_server, gateway, docker, echo_image, owner, workspace, models_bucket, cpu_flavor,
        local_pool, tmp_path, settings):
    settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS = 3
    deploy_worker(concurrency=2)
    folder = tmp_path / "boxed"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "greeting.txt").write_text("hello from the package\n")
    (folder / "model" / "config.json").write_text('{"model_type": "Image"}')
    model_uri = upload_package(folder, "models", "boxed")

    version = imported(services.ai_app_create(
        user=owner, workspace=workspace, name="boxed", source_type="image", image=echo_image, source_uri=model_uri,
        health={"check_method": "EXEC", "command": "test ! -e /tmp/unhealthy", "period_seconds": 1,
                "failure_threshold": 2}))
    events = version_events(version)
    assert "Source image size calculated successfully." in events and version.size_bytes > 0
    assert any(e.startswith("Model file imported successfully. (2 files to storage://models/atelier-models/boxed-")
               for e in events), events
    assert version.package_uri.startswith("storage://models/atelier-models/boxed-")

    service = service_create(user=owner, workspace=workspace, name="boxed-svc", websocket=True, versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool,
         "env": {"TEST_THRESHOLD": "0.5"}}])
    status_of(service, ServiceStatus.RUNNING)
    run = Run.objects.get(service_instance__service=service)

    # The ModelArts contract: uid 1000 / gid 100, 8080 published on the run's port, the package
    # read-only at /home/mind/model, only the chosen variables passed in.
    container = running_container(docker, run)
    assert container is not None and container["Name"] == f"/atelier-run-{run.pk}-{run.attempt}"
    assert container["Config"]["User"] == "1000:100"
    assert container["HostConfig"]["PortBindings"]["8080/tcp"][0]["HostPort"] == str(run.port)
    assert [(m["Destination"], m["RW"]) for m in container["Mounts"]] == [("/home/mind/model", False)]
    assert container["Config"]["Labels"]["atelier.run"] == str(run.pk)
    ids = docker("exec", container["Id"], "python3", "-c", "import os; print(os.getuid(), os.getgid())").stdout
    assert ids.split() == ["1000", "100"]
    refused = docker("exec", container["Id"], "sh", "-c", "echo x > /home/mind/model/new.txt", check=False)
    assert refused.returncode != 0 and "Read-only file system" in refused.stderr

    key = service_key_create(user=owner, service=service, name="k")[1]
    endpoint = f"{asgi_server.url}/infer/{service.pk}/"
    headers = {"X-Auth-Token": key}
    assert http.post(endpoint, json={"x": 1}).status_code == 401  # nothing reaches the container unauthenticated
    answer = http.post(endpoint, json={"x": 1}, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"echo": {"x": 1}, "uid": 1000, "gid": 100, "model_files": ["config.json", "greeting.txt"],
                             "model_greeting": "hello from the package", "env": {"TEST_THRESHOLD": "0.5"}}

    # Server-Sent Events and WebSocket from the container, relayed by the gateway.
    with http.stream("POST", endpoint, headers={**headers, "Accept": "text/event-stream"}, json={"q": 2}) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    assert [json.loads(line[6:]) for line in lines] == [{"index": i, "echo": {"q": 2}} for i in range(3)]
    from websockets.sync.client import connect

    with connect(endpoint.replace("http://", "ws://"), additional_headers=headers, proxy=None) as ws:
        ws.send("ping me")
        assert ws.recv(timeout=10) == "echo: ping me"

    # EXEC health check through `docker exec`: passes, then fails twice once the container says so;
    # the instance is restarted with a fresh container and serves again.
    wait_for(lambda: any("[health] Health check passed (test ! -e /tmp/unhealthy)." in line
                         for line in log_read(run, limit=500).lines), timeout=30, message="a passing EXEC check")
    docker("exec", container["Id"], "sh", "-c", ": > /tmp/unhealthy")  # the image has no coreutils
    serving_again(service, run, attempt=run.attempt + 1, gateway=gateway)
    assert any(line.startswith("[health] Health check failed 2 times in a row after it was healthy: "
                               "test ! -e /tmp/unhealthy: exit code 1.") for line in log_read(run, limit=500).lines)
    run.refresh_from_db()
    second = running_container(docker, run)
    assert second["Id"] != container["Id"] and all(c["Id"] != container["Id"] for c in containers_of(docker, run))
    assert http.post(endpoint, json={"x": 2}, headers=headers).json()["echo"] == {"x": 2}

    # A crashed container (docker kill): the engine restarts the instance.
    docker("kill", second["Id"])
    serving_again(service, run, attempt=run.attempt + 1, gateway=gateway)
    run.refresh_from_db()
    third = running_container(docker, run)
    assert third["Id"] != second["Id"] and third["State"]["Running"]
    assert http.post(endpoint, json={"x": 3}, headers=headers).json()["echo"] == {"x": 3}

    # The launcher killed outright (SIGKILL to the instance's process group, as when a worker
    # dies): its container outlives it, and the next attempt removes it before starting its own.
    os.killpg(run.pid, signal.SIGKILL)
    serving_again(service, run, attempt=run.attempt + 1, gateway=gateway)
    run.refresh_from_db()
    fourth = running_container(docker, run)
    assert [c["Id"] for c in containers_of(docker, run)] == [fourth["Id"]] and fourth["Id"] != third["Id"]

    # Stopping the service stops and removes its containers.
    service_stop(user=owner, service=service)
    status_of(service, ServiceStatus.STOPPED, timeout=90)
    wait_for(lambda: containers_of(docker, run) == [], timeout=30, message="the containers to be removed")


def test_an_image_that_is_not_on_the_worker_fails_the_import_with_the_reason(deploy_worker, docker, owner, workspace):
    deploy_worker(concurrency=1)
    assert docker("image", "inspect", ABSENT_IMAGE, check=False).returncode != 0
    version = imported(services.ai_app_create(user=owner, workspace=workspace, name="absent", source_type="image",
                                              image=ABSENT_IMAGE), status=ModelStatus.FAILED)
    assert version.status_reason.startswith(f"Image {ABSENT_IMAGE} is not on this worker and pulling it failed: ")
    failed = [e for e in version_events(version) if e.startswith("Failed to access source image.")]
    assert failed == [f"Failed to access source image. Check whether the image exists. ({version.status_reason})"]


def test_an_image_removed_after_the_import_makes_the_service_abnormal(deploy_worker, docker, echo_image, owner,
                                                                      workspace, cpu_flavor, local_pool, settings):
    settings.ATELIER_DEPLOYMENT_INSTANCE_RESTARTS = 0
    deploy_worker(concurrency=1)
    version = imported(services.ai_app_create(user=owner, workspace=workspace, name="gone", source_type="image",
                                              image=echo_image))
    # As if the image were deleted from the worker after the import (the test image stays).
    AiAppVersion.objects.filter(pk=version.pk).update(image=ABSENT_IMAGE)
    version.refresh_from_db()
    service = service_create(user=owner, workspace=workspace, name="gone-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    service = status_of(service, ServiceStatus.ABNORMAL)
    assert f"image {ABSENT_IMAGE} is not on this worker and pulling it failed" in service.status_reason, \
        service.status_reason
    run = Run.objects.get(service_instance__service=service)
    assert containers_of(docker, run) == []


def batch_over_image(docker, *, owner, workspace, image, folder, name, body: bytes, cpu_flavor, local_pool,
                     protocol="http", env=None) -> dict:
    """Run a batch service of an AI app from `image` (model folder `folder`) over one JSON file
    holding `body`, wait for Completed, check no container is left, and return that file's result."""
    import io

    from apps.core.paths import StoragePath
    from apps.core.storage import get_storage
    from apps.deployment.batch import batch_service_create
    from apps.storage.services import bucket_create

    version = imported(services.ai_app_create(
        user=owner, workspace=workspace, name=name, source_type="image", image=image, protocol=protocol,
        source_uri=upload_package(folder, "models", name), deploy_types=["batch"],
        apis=[{"url": "/", "method": "POST",
               "request": {"Content-type": "application/json",
                           "data": {"type": "object", "properties": {"x": {"type": "number"}}}},
               "response": {"Content-type": "application/json", "data": {"type": "object"}}}]))
    bucket_create(user=owner, workspace=workspace, name="data")
    storage = get_storage()
    storage.save(StoragePath("data", "in/a.json"), io.BytesIO(body))
    storage.mkdir(StoragePath("data", "out"))
    service = batch_service_create(user=owner, workspace=workspace, name=f"{name}-svc", model_version=version,
                                   input_uri="storage://data/in", output_uri="storage://data/out",
                                   flavor=cpu_flavor, pool=local_pool, env=env or {})
    service = status_of(service, ServiceStatus.COMPLETED, timeout=90)
    for run in Run.objects.filter(service_instance__service=service):
        assert containers_of(docker, run) == []
    return json.loads(storage.open(StoragePath("data", f"out/infer-result-{service.task_id}/a.json_result.txt"))
                      .read())


def test_a_batch_service_runs_the_image_over_a_folder(deploy_worker, docker, echo_image, owner, workspace,
                                                      models_bucket, cpu_flavor, local_pool, tmp_path):
    deploy_worker(concurrency=2)
    folder = tmp_path / "boxed"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "greeting.txt").write_text("batch hello\n")
    result = batch_over_image(docker, owner=owner, workspace=workspace, image=echo_image, folder=folder,
                              name="boxed-batch", body=b'{"x": 7}', cpu_flavor=cpu_flavor, local_pool=local_pool)
    assert (result["echo"], result["uid"], result["model_greeting"]) == ({"x": 7}, 1000, "batch hello")


def log_shows(run: Run, *texts: str, timeout=30) -> None:
    """Wait until a line of the run's log contains all `texts` (the failure quotes the log's tail)."""
    try:
        wait_for(lambda: any(all(t in line for t in texts) for line in log_read(run, limit=500).lines),
                 timeout=timeout, message=f"{texts!r} in the log of run {run.pk}")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the log ends: {log_read(run, limit=500).lines[-15:]}") from None


def tls_folder(tmp_path, name: str):
    """A model folder holding a fresh self-signed certificate and its key (for the image's TLS)."""
    folder = tmp_path / name
    (folder / "model").mkdir(parents=True)
    done = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                           "-nodes", "-days", "1", "-subj", "/CN=atelier-test", "-keyout",
                           str(folder / "model" / "key.pem"), "-out", str(folder / "model" / "cert.pem")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    (folder / "model" / "key.pem").chmod(0o644)  # the container runs as uid 1000
    return folder


TLS_ENV = {"TEST_TLS_CERT": "/home/mind/model/cert.pem", "TEST_TLS_KEY": "/home/mind/model/key.pem"}


def test_https_images_are_called_over_tls_and_a_protocol_mismatch_answers_4503(
        deploy_worker, asgi_server, gateway, docker, echo_image, owner, workspace, models_bucket, cpu_flavor,
        local_pool, tmp_path):
    deploy_worker(concurrency=4)
    tls_uri = upload_package(tls_folder(tmp_path, "tls"), "models", "tls")
    health = {"check_method": "HTTP", "url": "/health", "period_seconds": 1, "failure_threshold": 1000}

    def deploy(name, *, protocol, source_uri="", env=None, checked=True):
        version = imported(services.ai_app_create(user=owner, workspace=workspace, name=name, source_type="image",
                                                  image=echo_image, source_uri=source_uri, protocol=protocol,
                                                  health=health if checked else None))
        service = service_create(user=owner, workspace=workspace, name=f"{name}-svc", websocket=True, versions=[
            {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool, "env": env or {}}])
        return service

    # HTTPS declared and served (self-signed; ready after a 2xx from its health URL over TLS); an
    # HTTPS image declared HTTP (without a health check: its plain-HTTP health URL would keep it
    # from ever being ready); a plain image declared HTTPS, without a health check (ready once its
    # port answers) and with one (never ready: its health URL is asked over TLS).
    right = deploy("tls-right", protocol="https", source_uri=tls_uri, env=TLS_ENV)
    says_http = deploy("tls-says-http", protocol="http", source_uri=tls_uri, env=TLS_ENV, checked=False)
    says_https = deploy("plain-says-https", protocol="https", checked=False)
    checked_https = deploy("plain-says-https-checked", protocol="https")
    for service in (right, says_http, says_https):
        status_of(service, ServiceStatus.RUNNING)

    def call(service):
        key = service_key_create(user=owner, service=service, name="k")[1]
        return http.post(f"{asgi_server.url}/infer/{service.pk}/", json={"x": 1}, headers={"X-Auth-Token": key})

    answer = call(right)
    assert answer.status_code == 200, answer.text
    assert answer.json()["echo"] == {"x": 1} and answer.json()["env"]["TEST_TLS_CERT"] == TLS_ENV["TEST_TLS_CERT"]
    from websockets.sync.client import connect

    key = service_key_create(user=owner, service=right, name="ws")[1]
    with connect(f"{asgi_server.url}/infer/{right.pk}/".replace("http://", "ws://"),
                 additional_headers={"X-Auth-Token": key}, proxy=None) as ws:  # relayed over wss://
        ws.send("over tls")
        assert ws.recv(timeout=10) == "echo: over tls"
    right_run = Run.objects.get(service_instance__service=right)
    # Its HTTP health URL is asked over TLS, by the engine for readiness and by healthexec after.
    assert right_run.health_tls and right_run.health_path == "/health"
    log_shows(right_run, "[health] Health check passed (HTTPS GET /health).")

    # HTTPS declared, plain HTTP served: the ModelArts SSL message; the health check says why.
    answer = call(says_https)
    assert answer.status_code == 503, answer.text
    assert answer.json() == {"error_code": "ModelArts.4503", "error_msg": "Failed to find backend service because "
                             "SSL error in the backend service, please check the service is https"}
    plain_run = Run.objects.get(service_instance__service=says_https)
    log_shows(plain_run, "Protocol mismatch: the AI application declares HTTPS but the container answers HTTP")
    # With a health check it answers plain HTTP to the engine's TLS probe too: never ready.
    checked_run = Run.objects.get(service_instance__service=checked_https)
    # (An earlier check may have found the port closed: the count is not asserted.)
    log_shows(checked_run, "[health] Health check failed (", "/1000): HTTPS GET /health: SSL error (",
              "): the container does not answer HTTPS on its port (plain HTTP?); check the protocol its AI "
              "application declares.")
    checked_run.refresh_from_db()
    assert checked_run.health_tls and checked_run.ready_at is None, checked_run.status

    # HTTP declared, TLS served: a clear 4503 as well, and the instance's log names the mismatch.
    answer = call(says_http)
    assert answer.status_code == 503, answer.text
    assert answer.json() == {"error_code": "ModelArts.4503", "error_msg": "Failed to find backend service because "
                             "the backend service answered with TLS (HTTPS) while its AI application declares HTTP, "
                             "please check the service is http"}
    says_http_run = Run.objects.get(service_instance__service=says_http)
    log_shows(says_http_run, "Protocol mismatch: the AI application declares HTTP but the container answers HTTPS")

    for service in (right, says_http, says_https, checked_https):
        service_stop(user=owner, service=service)
    for service in (right, says_http, says_https, checked_https):
        status_of(service, ServiceStatus.STOPPED)


def test_resource_samples_of_a_container_instance_measure_the_container(
        deploy_worker, docker, echo_image, owner, workspace, cpu_flavor, local_pool, settings):
    from apps.deployment.monitoring import resource_series
    from apps.runtime.models import Metric

    settings.ATELIER_DEPLOYMENT_METRIC_SECONDS = 1
    deploy_worker(concurrency=1, env={"ATELIER_DEPLOYMENT_METRIC_SECONDS": "1"})
    # The server plus a loop burning one core, all inside the container (the docker client idles).
    version = imported(services.ai_app_create(
        user=owner, workspace=workspace, name="burner", source_type="image", image=echo_image,
        command=["sh", "-c", "python3 -c 'while True: pass' & exec python3 /opt/server.py"]))
    service = service_create(user=owner, workspace=workspace, name="burner-svc", versions=[
        {"model_version": version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    status_of(service, ServiceStatus.RUNNING)
    run = Run.objects.get(service_instance__service=service)
    # A fifth of a core at least (other work on a small machine may slow the loop down); the
    # launcher and its docker client idle far below that.
    wait_for(lambda: Metric.objects.filter(run=run, name="container_cpu_cores", value__gte=0.2).first(),
             timeout=60, message="a container CPU reading of at least a fifth of a core")
    assert Metric.objects.filter(run=run, name="container_memory_mb", value__gt=1).exists()
    series = resource_series(service, minutes=10)
    (_label, cpu), = series["cpu_usage"].items()
    # Of the 1-core flavor: the container's loop, not the launcher's idle docker client.
    assert max(value for _at, value in cpu) >= 20, cpu
    (_label, memory), = series["mem_usage"].items()
    assert memory and all(0 < value < 100 for _at, value in memory), memory
    service_stop(user=owner, service=service)
    status_of(service, ServiceStatus.STOPPED)


def test_a_batch_service_calls_an_https_image_over_tls(deploy_worker, docker, echo_image, owner, workspace,
                                                       models_bucket, cpu_flavor, local_pool, tmp_path):
    deploy_worker(concurrency=2)
    result = batch_over_image(docker, owner=owner, workspace=workspace, image=echo_image,
                              folder=tls_folder(tmp_path, "tls"), name="tls-batch", body=b'{"x": 8}',
                              cpu_flavor=cpu_flavor, local_pool=local_pool, protocol="https", env=TLS_ENV)
    assert result["echo"] == {"x": 8} and result["env"]["TEST_TLS_CERT"] == TLS_ENV["TEST_TLS_CERT"]
