"""Deployment test fixtures: fresh storage with a "models" bucket, a pool and flavor, versions in
status Normal, model servers on loopback (in-process) and services whose instances are those
servers — enough to test the gateway without a worker. Real-worker tests use `deploy_worker`."""
from __future__ import annotations

import threading
import time

import pytest
from django.utils import timezone

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from tests.deployment.packages import fixture_package, sklearn_package
from tests.harness import free_port
from tests.storage.backends import use_local

# Engine timings for worker tests (as tests/runtime/conftest.py), plus deployment ones.
FAST = {
    "ATELIER_RUNTIME_HEARTBEAT_SECONDS": "1",
    "ATELIER_RUNTIME_LOST_SECONDS": "4",
    "ATELIER_RUNTIME_SWEEP_SECONDS": "1",
    "ATELIER_RUNTIME_STOP_GRACE_SECONDS": "3",
    "ATELIER_RUNTIME_UPLOAD_SECONDS": "1",
    "ATELIER_RUNTIME_REDISPATCH_SECONDS": "5",
    "ATELIER_WORKER_HOST": "127.0.0.1",
    "ATELIER_GATEWAY_CACHE_SECONDS": "1",
    "ATELIER_DEPLOYMENT_DRAIN_SECONDS": "2",
    "ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS": "0",  # test_serving covers the delayed stop
}


@pytest.fixture(autouse=True)
def _fresh_storage(settings, tmp_path):
    use_local(settings, tmp_path)
    settings.ATELIER_DEPLOYMENT_ENV_ROOT = tmp_path / "envs"
    get_storage.cache_clear()
    yield
    get_storage.cache_clear()


@pytest.fixture
def models_bucket(owner, workspace):
    from apps.storage.services import bucket_create

    return bucket_create(user=owner, workspace=workspace, name="models")


def upload_package(root, bucket: str, key: str) -> str:
    """Copy a local package folder into storage; returns its storage:// URI."""
    storage = get_storage()
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                storage.save(StoragePath(bucket, f"{key}/{path.relative_to(root).as_posix()}"), handle)
    return f"storage://{bucket}/{key}"


@pytest.fixture
def local_pool(db):
    from apps.runtime.models import Pool

    return Pool.objects.get_or_create(name="local", defaults={"job_types": ["training", "notebook", "inference"]})[0]


@pytest.fixture
def cpu_flavor(local_pool):
    from apps.runtime.models import Flavor

    flavor = Flavor.objects.get_or_create(name="cpu-1c-1g", defaults={"cpus": 1, "memory_mb": 1024})[0]
    flavor.pools.add(local_pool)
    return flavor


def make_version(user, workspace, uri: str, *, name: str = "echo", app=None, version: str = "", deploy_types=("online",),
                 imported: bool = True):
    """Create an AI app (or a new version of `app`) from a storage package and import it now."""
    from apps.deployment import services
    from apps.deployment.models import AiAppVersion

    if app is None:
        row = services.ai_app_create(user=user, workspace=workspace, name=name, source_uri=uri, version=version,
                                     deploy_types=list(deploy_types))
    else:
        row = services.ai_app_version_create(user=user, app=app, source_uri=uri, version=version,
                                             deploy_types=list(deploy_types))
    if imported:
        services.ai_app_version_import(version_id=row.pk)
    return AiAppVersion.objects.select_related("app").get(pk=row.pk)


@pytest.fixture
def echo_uri(models_bucket, tmp_path):
    return upload_package(fixture_package("echo", tmp_path), "models", "echo")


@pytest.fixture
def echo_version(owner, workspace, echo_uri):
    return make_version(owner, workspace, echo_uri)


@pytest.fixture
def iris_uri(models_bucket, tmp_path):
    return upload_package(sklearn_package(tmp_path), "models", "iris")


class LocalModelServer:
    """The model server for one package, in a thread of the test process, on a free port."""

    def __init__(self, package_root, *, name: str, version: str):
        import uvicorn

        from atelier_modelserver.app import build_app
        from atelier_modelserver.loader import LoadedModel, model_load, package_root as root_of

        model = LoadedModel(name=name, version=version, package_dir=root_of(package_root))
        model_load(model)
        assert model.error == "", model.error
        self.port = free_port()
        self.endpoint = f"127.0.0.1:{self.port}"
        config = uvicorn.Config(build_app(model, threads=4), host="127.0.0.1", port=self.port, log_level="warning",
                                lifespan="off", ws="websockets-sansio", timeout_keep_alive=75)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert time.monotonic() < deadline, "model server did not start"
            time.sleep(0.02)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def model_servers():
    """Factory: `model_servers(package_root, name=…, version=…)` → a running LocalModelServer."""
    started = []

    def start(root, *, name="echo", version="0.0.1"):
        server = LocalModelServer(root, name=name, version=version)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def attach_instances(service, endpoints_by_version: dict[int, list[str]]):
    """Pretend the service's instance runs are up at these endpoints: ready runs, then refresh."""
    from apps.deployment.serving import service_refresh
    from apps.runtime.choices import RunStatus
    from apps.runtime.models import Run

    for model_version_id, endpoints in endpoints_by_version.items():
        instances = list(service.instances.filter(model_version_id=model_version_id).order_by("pk"))
        assert len(instances) == len(endpoints), (len(instances), endpoints)
        for instance, endpoint in zip(instances, endpoints):
            Run.objects.filter(pk=instance.run_id).update(status=RunStatus.RUNNING, ready_at=timezone.now(),
                                                          started_at=timezone.now(), endpoint=endpoint,
                                                          port=int(endpoint.rsplit(":", 1)[1]))
    service_refresh(service)
    service.refresh_from_db()
    return service


@pytest.fixture
def gateway():
    """The process's gateway with empty caches (the asgi_server serves console.asgi)."""
    import console.asgi  # noqa: F401  (mounts the gateway)
    from apps.deployment.gateway import gateway_current

    current = gateway_current()
    current.invalidate()
    current.stats.take()
    yield current
    current.invalidate()


@pytest.fixture
def deploy_worker(celery_worker, settings):
    """Factory: a real worker on pool.local and the control queue, with fast engine timings."""
    for name, value in FAST.items():
        setattr(settings, name, int(value) if value.isdigit() else value)

    def start(*, concurrency=3, env=None):
        return celery_worker(queues=("pool.local", "atelier.control"), concurrency=concurrency,
                             env={**FAST, **(env or {})})

    return start


def wait_for(predicate, timeout=60.0, interval=0.1, message="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {message}")


def service_events(service) -> list[str]:
    from apps.core.services import events_for

    return list(events_for(service).values_list("message", flat=True))


def status_of(service, statuses, timeout=90):
    """Wait until `service` has one of `statuses` and return it fresh; on timeout, fail naming its
    status, reason and events."""
    from apps.deployment.models import InferenceService

    statuses = {statuses} if isinstance(statuses, str) else set(statuses)

    def check():
        fresh = InferenceService.objects.get(pk=service.pk)
        return fresh if fresh.status in statuses else None

    try:
        return wait_for(check, timeout=timeout, message=f"{service.name} to be {statuses}")
    except AssertionError:
        fresh = InferenceService.objects.get(pk=service.pk)
        raise AssertionError(f"{service.name} is {fresh.status} ({fresh.status_reason}); events: "
                             f"{service_events(service)}") from None
