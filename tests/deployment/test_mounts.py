"""Storage mounts of online services: validation, how instances get them (staged folder plus
MODEL_MOUNTS; a bind mount for containers), the deploy form, and a real instance reading one."""
from __future__ import annotations

import io
import json
import sys

import httpx
import pytest
from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.deployment import services
from apps.deployment.choices import ServiceStatus
from apps.deployment.keys import service_key_create
from apps.deployment.models import AiAppVersion, InferenceService
from apps.deployment.serving import instance_command, service_create, service_stop
from atelier_modelserver.container import docker_argv
from tests.deployment.conftest import wait_for


@pytest.fixture
def dictionary(models_bucket):
    get_storage().save(StoragePath("models", "dict/words.txt"), io.BytesIO(b"hello mounted world\n"))
    return "storage://models/dict"


def deploy(owner, workspace, version, flavor, pool, mounts, name="mounted"):
    return service_create(user=owner, workspace=workspace, name=name, mounts=mounts, versions=[
        {"model_version": version, "weight": 100, "flavor": flavor, "pool": pool}])


@pytest.mark.django_db
@pytest.mark.parametrize("mount, message", [
    ({"source": "storage://models/dict", "mount_path": "data"},
     "Mount 1: the mount path starts with /, uses only letters, digits, _, - and /, has at most 1024 characters and "
     "is not / itself (e.g. /home/mind/data)."),
    ({"source": "storage://models/dict", "mount_path": "/"}, None),
    ({"source": "storage://models/dict", "mount_path": "/data dir"}, None),
    ({"source": "storage://models/dict", "mount_path": "/data/../etc"}, None),
    ({"source": "storage://models/dict", "mount_path": "/a//b"}, None),
    ({"source": "storage://models/dict", "mount_path": "/" + "a" * 1024}, None),
    ({"source": "storage://models/missing", "mount_path": "/data"}, "Mount 1: "),
    ({"source": "", "mount_path": "/data"}, "Mount 1: "),
])
def test_mount_rules(owner, workspace, echo_version, cpu_flavor, local_pool, dictionary, mount, message):
    with pytest.raises(ValidationError) as caught:
        deploy(owner, workspace, echo_version, cpu_flavor, local_pool, [mount])
    text = caught.value.message_dict["mounts"][0]
    if message is None or message.endswith("(e.g. /home/mind/data)."):
        assert text.startswith("Mount 1: the mount path starts with /")
    else:
        assert text.startswith(message) and len(text) > len(message)
    assert not InferenceService.objects.exists()  # nothing saved


@pytest.mark.django_db
def test_mounts_are_checked_against_the_callers_storage_and_counted(owner, outsider, workspace, echo_version,
                                                                   cpu_flavor, local_pool, dictionary):
    with pytest.raises(ValidationError) as caught:
        deploy(owner, workspace, echo_version, cpu_flavor, local_pool,
               [{"source": dictionary, "mount_path": "/a"}, {"source": dictionary, "mount_path": "/a/"}])
    assert caught.value.message_dict == {"mounts": ["Mount 2: /a is mounted twice."]}
    with pytest.raises(ValidationError) as caught:
        deploy(owner, workspace, echo_version, cpu_flavor, local_pool,
               [{"source": dictionary, "mount_path": f"/m{i}"} for i in range(9)])
    assert caught.value.message_dict == {"mounts": ["At most 8 storage mounts."]}
    service = deploy(owner, workspace, echo_version, cpu_flavor, local_pool,
                     [{"source": dictionary, "mount_path": "/home/mind/data/"}, {"source": "", "mount_path": ""}])
    assert service.mounts == [{"source": "storage://models/dict", "mount_path": "/home/mind/data"}]
    run = service.instances.get().run
    assert {"name": "mount_1", "uri": "storage://models/dict"} in run.inputs
    assert json.loads(run.env["MODEL_MOUNTS"]) == {"/home/mind/data": "inputs/mount_1"}


@pytest.mark.django_db
def test_containers_get_a_read_only_bind_mount(owner, workspace):
    image = services.ai_app_create(user=owner, workspace=workspace, name="boxed", source_type="image",
                                   image="registry.local/srv:1")
    argv, _path, inputs, env = instance_command(image, (), [{"source": "storage://models/dict",
                                                             "mount_path": "/home/mind/data"}])
    at = argv.index("--")
    assert argv[at - 2:at] == ["--mount", "inputs/mount_1:/home/mind/data"]
    assert inputs == [{"name": "mount_1", "uri": "storage://models/dict"}]
    command = docker_argv(docker="docker", image="img", container_port=8080, host_port=31000, name="n", env={},
                          command=[], mounts=[("inputs/mount_1", "/home/mind/data")])
    volume = command[command.index("-v") + 1]
    assert volume.endswith("/inputs/mount_1:/home/mind/data:ro") and volume.startswith("/")


@pytest.mark.django_db
def test_deploy_form_takes_a_mount_and_shows_its_errors(client, owner, echo_version, cpu_flavor, local_pool,
                                                        dictionary):
    client.force_login(owner)
    rows = json.dumps([{"model_version": echo_version.pk, "weight": 100, "pool": local_pool.pk,
                        "flavor": cpu_flavor.pk, "instance_count": 1}])
    form = {"name": "formed", "auto_stop": "1", "deploy_timeout_minutes": 20, "max_unavailable": 1,
            "versions_json": rows, "rules_json": "[]", "mount_source": dictionary, "mount_path": "relative"}
    bad = client.post("/services/new", form)
    assert bad.status_code == 400 and "Mount 1: the mount path starts with /" in bad.content.decode()
    good = client.post("/services/new", {**form, "mount_path": "/home/mind/data"})
    assert good.status_code == 302
    service = InferenceService.objects.get(name="formed")
    assert service.mounts == [{"source": dictionary, "mount_path": "/home/mind/data"}]
    page = client.get(f"/services/{service.pk}/").content.decode()
    assert 'data-testid="mounts"><span class="mono">storage://models/dict</span> → <span class="mono">/home/mind/data' \
        in page


# Answers GET with the first line of a file under the /home/mind/data mount, found through MODEL_MOUNTS.
READER = """
import http.server, json, os
place = json.loads(os.environ["MODEL_MOUNTS"])["/home/mind/data"]
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(place, "words.txt"), "rb") as handle:
            body = handle.readline().strip()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("0.0.0.0", int(os.environ["PORT"])), Handler).serve_forever()
"""


@pytest.mark.worker
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_real_instance_reads_its_mounted_folder(deploy_worker, asgi_server, gateway, owner, workspace, cpu_flavor,
                                                  local_pool, dictionary):
    deploy_worker(concurrency=2)
    version = services.ai_app_create(
        user=owner, workspace=workspace, name="reader", source_type="command", command=[sys.executable, "-c", READER],
        apis=[{"url": "/", "method": "GET", "request": {"Content-type": "application/json"}}])
    services.ai_app_version_import(version_id=version.pk)
    version = AiAppVersion.objects.get(pk=version.pk)
    service = deploy(owner, workspace, version, cpu_flavor, local_pool,
                     [{"source": dictionary, "mount_path": "/home/mind/data"}])
    wait_for(lambda: InferenceService.objects.get(pk=service.pk).status == ServiceStatus.RUNNING, timeout=60,
             message="the service to run")
    key = service_key_create(user=owner, service=service, name="k")[1]
    answer = httpx.get(f"{asgi_server.url}/infer/{service.pk}/", headers={"X-Auth-Token": key}, trust_env=False)
    assert (answer.status_code, answer.text) == (200, "hello mounted world")
    service_stop(user=owner, service=service)
    wait_for(lambda: InferenceService.objects.get(pk=service.pk).status == ServiceStatus.STOPPED, timeout=60,
             message="the service to stop")
