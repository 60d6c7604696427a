"""Edge additions without an agent: asynchronous deployments (number of streams, the start
parameters the AI application defines, the instance-count recommendation), NFS / memory volume
rules, volumes.py on real processes (NFS without a client, read-only host paths, memory temp
paths), the agent-upgrade request and heartbeat protocol with the program the console hands out,
and the node page's no-GPU / no-NPU notes."""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client
from django.urls import reverse

from apps.core.models import Event
from apps.deployment import services as app_services
from apps.deployment.edge import serving, services
from apps.deployment.edge.choices import EdgeNodeStatus
from apps.deployment.edge.models import EdgeNode, EdgeNodeSample
from apps.deployment.edge.volumes import EXIT_VOLUME
from apps.runtime.models import Run
from tests.deployment.test_edge import API, error, running_node

pytestmark = pytest.mark.django_db

VOLUMES = Path(serving.__file__).with_name("volumes.py")
PARAMS = [{"name": "THRESHOLD", "default": "0.5", "description": "score cut-off"},
          {"name": "CAMERA_URL", "required": True, "description": "RTSP address"}]


def async_version(owner, workspace, uri, *, name="video", start_params=PARAMS):
    row = app_services.ai_app_create(user=owner, workspace=workspace, name=name, source_uri=uri,
                                     request_mode="async", deploy_types=["edge"], start_params=start_params)
    app_services.ai_app_version_import(version_id=row.pk)
    row.refresh_from_db()
    return row


def events_of(obj) -> list[str]:
    return list(Event.objects.filter(content_type=ContentType.objects.get_for_model(obj), object_id=str(obj.pk))
                .order_by("pk").values_list("message", flat=True))


# ---- start parameters on the AI application ---------------------------------------------------


def test_ai_app_start_parameters_are_async_only_and_checked(owner, workspace, echo_uri):
    version = async_version(owner, workspace, echo_uri)
    assert version.start_params == [
        {"name": "THRESHOLD", "default": "0.5", "required": False, "description": "score cut-off"},
        {"name": "CAMERA_URL", "default": "", "required": True, "description": "RTSP address"}]
    cases = [
        (dict(request_mode="sync", start_params=[{"name": "A"}]), "asynchronous AI applications only"),
        (dict(start_params=[{"name": "1A"}]), "not a usable name"),
        (dict(start_params=[{"name": "PORT"}]), "not a usable name"),
        (dict(start_params=[{"name": "EDGE_X"}]), "not a usable name"),
        (dict(start_params=[{"name": "A"}, {"name": "A"}]), "defined twice"),
        (dict(start_params="A=1"), "at most 32"),
    ]
    for number, (kwargs, text) in enumerate(cases):
        with pytest.raises(ValidationError) as exc:
            app_services.ai_app_create(user=owner, workspace=workspace, name=f"bad-{number}", source_uri=echo_uri,
                                       **{"request_mode": "async", "deploy_types": ["edge"], **kwargs})
        assert text in error(exc), kwargs
    # The page: a line per parameter, NAME alone is required; the usage-constraints tab lists them.
    client = Client()
    client.force_login(owner)
    page = client.get(reverse("deployment:version_detail", args=[version.pk]), {"tab": "constraints"})
    assert "CAMERA_URL" in page.content.decode() and "(required)" in page.content.decode()
    new = client.get(reverse("deployment:version_create", args=[version.app_id])).content.decode()
    assert "THRESHOLD=0.5 # score cut-off" in new and "CAMERA_URL # RTSP address" in new


# ---- async deployments ------------------------------------------------------------------------


def test_async_deploy_streams_params_and_instance_warning(api, owner, workspace, echo_uri, cpu_flavor):
    node = running_node(owner, workspace)
    version = async_version(owner, workspace, echo_uri)
    sync = async_version(owner, workspace, echo_uri, name="sync-edge", start_params=None)
    sync.app.request_mode = "sync"
    sync.app.save()
    base = dict(user=owner, workspace=workspace, model_version=version, flavor=cpu_flavor, node=node)
    cases = [
        (dict(start_params={"CAMERA_URL": "rtsp://cam"}), "stream_count", "number of video streams"),
        (dict(stream_count=0, start_params={"CAMERA_URL": "x"}), "stream_count", "from 1 to 64"),
        (dict(stream_count=65, start_params={"CAMERA_URL": "x"}), "stream_count", "from 1 to 64"),
        (dict(stream_count="many", start_params={"CAMERA_URL": "x"}), "stream_count", "whole number"),
        (dict(stream_count=2), "start_params", "CAMERA_URL is required by video 0.0.1 (RTSP address)"),
        (dict(stream_count=2, start_params={"CAMERA_URL": "x", "SPEED": "1"}), "start_params",
         "SPEED is not a start parameter of video 0.0.1 (it defines: THRESHOLD, CAMERA_URL)"),
        (dict(model_version=sync, stream_count=2), "stream_count", "asynchronous AI applications only"),
    ]
    for kwargs, field, text in cases:
        with pytest.raises(ValidationError) as exc:
            serving.edge_service_deploy(**{**base, "name": "a", **kwargs})
        assert field in exc.value.message_dict and text in error(exc), kwargs
    assert not Run.objects.exists()

    service = serving.edge_service_deploy(**base, name="cams", stream_count=4, instance_count=11,
                                          start_params={"CAMERA_URL": "rtsp://cam/1"})
    assert service.stream_count == 4 and service.start_params == {"THRESHOLD": "0.5", "CAMERA_URL": "rtsp://cam/1"}
    runs = list(Run.objects.filter(edge_instance__service=service))
    assert len(runs) == 11
    # Every instance receives the stream count and the parameters (each, and all as JSON).
    for run in runs:
        assert run.env["EDGE_STREAM_COUNT"] == "4" and run.env["CAMERA_URL"] == "rtsp://cam/1"
        assert json.loads(run.env["EDGE_START_PARAMS"]) == {"CAMERA_URL": "rtsp://cam/1", "THRESHOLD": "0.5"}
    assert any("at most 10 are recommended" in m for m in events_of(service))
    # A synchronous version takes free-form variables and no stream count.
    plain = serving.edge_service_deploy(**{**base, "model_version": sync}, name="plain", start_params={"MODE": "x"})
    assert plain.stream_count is None and "EDGE_STREAM_COUNT" not in Run.objects.get(edge_instance__service=plain).env

    # The API: the list shows request mode and deploy mode; errors name the field.
    listed = {s["name"]: s for s in api.get(f"{API}/services/").json()}
    assert (listed["cams"]["request_mode"], listed["cams"]["deploy_mode"], listed["cams"]["stream_count"]) == \
        ("async", "node", 4)
    assert listed["plain"]["request_mode"] == "sync"
    bad = api.post(f"{API}/services/", {"name": "api-cams", "model_version": version.pk, "flavor": cpu_flavor.name,
                                        "node": node.pk, "stream_count": 2}, format="json")
    assert bad.status_code == 400 and "CAMERA_URL is required" in str(bad.json())

    # The page: the table shows both columns; the form puts errors on their fields.
    client = Client()
    client.force_login(owner)
    listing = client.get(reverse("deployment:edge_service_list")).content.decode()
    assert "Request mode" in listing and "Asynchronous" in listing and "Deploy mode" in listing
    form = {"name": "page-cams", "target": f"node:{node.pk}", "model_version": version.pk,
            "flavor": cpu_flavor.name, "instance_count": 1, "start_params": "CAMERA_URL=rtsp://x"}
    answer = client.post(reverse("deployment:edge_service_create"), form)
    assert answer.status_code == 400
    assert "number of video streams" in answer.content.decode()
    made = client.post(reverse("deployment:edge_service_create"), {**form, "stream_count": 3, "instance_count": 12},
                       follow=True)
    text = made.content.decode()
    assert made.status_code == 200 and "12 instances in one deployment" in text and "3 per instance" in text


# ---- volumes ----------------------------------------------------------------------------------


def test_nfs_and_memory_volume_rules(owner, workspace, echo_version, cpu_flavor, echo_uri):
    node = running_node(owner, workspace)
    version = app_services.ai_app_create(user=owner, workspace=workspace, name="vol", source_uri=echo_uri,
                                         deploy_types=["edge"])
    app_services.ai_app_version_import(version_id=version.pk)
    version.refresh_from_db()
    base = dict(user=owner, workspace=workspace, model_version=version, flavor=cpu_flavor, node=node, name="v")
    for source in ("", "nfs-server", "server:relative", "server:/a/../b", "bad host:/x", "srv:/a//b"):
        with pytest.raises(ValidationError) as exc:
            serving.edge_service_deploy(**base, volumes=[{"name": "share", "type": "nfs", "source": source,
                                                          "mount_path": "/data"}])
        assert "server:/export" in error(exc), source
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_deploy(**base, volumes=[{"name": "t", "type": "temp_path", "mount_path": "/t",
                                                      "medium": "ssd"}])
    assert "disk or memory" in error(exc)
    service = serving.edge_service_deploy(**base, volumes=[
        {"name": "share", "type": "nfs", "source": "192.168.0.10:/var/docker/hilens", "mount_path": "/data",
         "read_only": True},
        {"name": "v6", "type": "nfs", "source": "[fd00::1]:/export", "mount_path": "/v6"},
        {"name": "fast", "type": "temp_path", "mount_path": "/fast", "medium": "memory"}])
    sent = json.loads(Run.objects.get(edge_instance__service=service).command[3])
    assert sent[0] == {"name": "share", "type": "nfs", "mount_path": "/data", "read_only": True,
                       "source": "192.168.0.10:/var/docker/hilens"}
    assert sent[2]["medium"] == "memory"


def volumes_run(tmp_path, volumes, code: str) -> subprocess.CompletedProcess:
    """volumes.py in a fresh run directory, running `python -c code` as the instance."""
    run_dir = tmp_path / "run"
    run_dir.mkdir(exist_ok=True)
    return subprocess.run([sys.executable, str(VOLUMES), "--volumes", json.dumps(volumes), "--", sys.executable,
                           "-c", code], cwd=run_dir, capture_output=True, text=True, timeout=120)


def can_mount(tmp_path) -> bool:
    """Whether this machine lets the test's processes bind-mount (root with CAP_SYS_ADMIN): a private
    folder bound onto itself, then unbound."""
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    probe = tmp_path / "bind-probe"
    probe.mkdir()
    try:
        if subprocess.run(["mount", "--bind", str(probe), str(probe)], capture_output=True).returncode != 0:
            return False
        subprocess.run(["umount", str(probe)], capture_output=True)
        return True
    finally:
        probe.rmdir()


def test_volumes_script_nfs_fails_with_the_reason_and_mounts_nothing(tmp_path):
    done = volumes_run(tmp_path, [{"name": "share", "type": "nfs", "source": "nfs.invalid:/export",
                                   "mount_path": "/data", "read_only": False}], "print('started')")
    assert done.returncode == EXIT_VOLUME and "started" not in done.stdout
    line = [x for x in done.stderr.splitlines() if x.startswith("[edge volumes] Volume ")][-1]
    if shutil.which("mount.nfs") is None and not any(Path(d, "mount.nfs").exists() for d in ("/sbin", "/usr/sbin")):
        assert "this node has no NFS client (mount.nfs; install nfs-common or nfs-utils)" in line
    else:  # a node with the client: the mount itself fails and says so
        assert "mount -t nfs nfs.invalid:/export failed" in line or "mounting needs root" in line
    assert not (tmp_path / "run" / "data").exists()
    assert "atelier-edge-share-" not in Path("/proc/mounts").read_text()


def test_volumes_script_read_only_host_path_and_memory_temp_path(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "in.txt").write_text("node data")
    code = """
import json, os
root = os.environ["EDGE_MOUNT_ROOT"]
places = json.loads(os.environ["EDGE_VOLUMES"])
print("READ", open(os.path.join(root, "data/in.txt")).read())
try:
    open(os.path.join(root, "data/out.txt"), "w").write("x")
    print("WRITE ok")
except OSError as exc:
    print("WRITE refused", exc.errno)
open(os.path.join(root, "fast/f.txt"), "w").write("memory")
print("FAST", os.path.realpath(os.path.join(root, "fast")))
print("PLACES", sorted(places))
"""
    done = volumes_run(tmp_path, [
        {"name": "data", "type": "host_path", "host_path": str(shared), "mount_path": "/data", "read_only": True},
        {"name": "fast", "type": "temp_path", "mount_path": "/fast", "medium": "memory"}], code)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "READ node data" in out and "PLACES ['/data', '/fast']" in out
    fast = next(line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("FAST "))
    assert fast.startswith("/dev/shm/atelier-edge-fast-")
    assert not Path(fast).exists()  # the memory folder went with the instance
    if can_mount(tmp_path):
        # Read-only is enforced by a read-only bind mount, undone when the instance ends.
        assert "WRITE refused 30" in out and not (shared / "out.txt").exists()
        assert "atelier-edge-data-" not in Path("/proc/mounts").read_text()
    else:
        assert "WRITE ok" in out and "read-only is not enforced" in done.stderr
    assert (shared / "in.txt").read_text() == "node data"


# ---- agent upgrade ----------------------------------------------------------------------------


def test_agent_upgrade_request_and_heartbeat_protocol(api, owner, workspace, teammate):
    node = running_node(owner, workspace)
    current = services.agent_version_current()
    agent_source = Path(services.__file__).with_name("agent.py").read_text()
    assert f'VERSION = "{current}"' in agent_source
    EdgeNode.objects.filter(pk=node.pk).update(agent_version="0.9.0")
    node.refresh_from_db()
    unconnected, _ = services.edge_node_create(user=owner, workspace=workspace, name="later")
    with pytest.raises(ValidationError) as exc:
        services.edge_node_upgrade_request(user=owner, node=unconnected)
    assert "UNCONNECTED: its agent must be connected" in error(exc)
    with pytest.raises(PermissionDenied):
        services.edge_node_upgrade_request(user=teammate, node=node)  # workspace admins only
    services.edge_node_upgrade_request(user=owner, node=node)
    with pytest.raises(ValidationError) as exc:
        services.edge_node_upgrade_request(user=owner, node=node)
    assert "already in progress" in error(exc)
    config = services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1,
                                          agent_version="0.9.0")
    assert config["upgrade"] == {"version": current}
    # The agent says it is upgrading: UPGRADING; then the new program's heartbeat ends the request.
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1, agent_version="0.9.0",
                                 upgrading=True)
    assert EdgeNode.objects.get(pk=node.pk).status == EdgeNodeStatus.UPGRADING
    node.refresh_from_db()
    config = services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1,
                                          agent_version=current)
    node.refresh_from_db()
    assert config["upgrade"] is None and not node.upgrade_requested and node.status == EdgeNodeStatus.RUNNING
    assert node.agent_version == current
    messages = events_of(node)
    assert any(m.startswith("Agent upgrade from 0.9.0 to") for m in messages)
    assert "Agent is upgrading (from 0.9.0)." in messages and any(m.startswith(f"Agent upgraded to {current}")
                                                                    for m in messages)
    # A failed upgrade is reported by the agent and ends the request with its reason.
    EdgeNode.objects.filter(pk=node.pk).update(agent_version="0.9.0")
    node.refresh_from_db()
    upgraded = api.post(f"{API}/nodes/{node.pk}/upgrade/")
    assert upgraded.status_code == 200 and upgraded.json()["upgrade_requested"] is True
    node.refresh_from_db()
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1, agent_version="0.9.0",
                                 upgrade_error="the agent program does not match its SHA-256")
    node.refresh_from_db()
    assert not node.upgrade_requested
    assert any("failed on the node: the agent program does not match" in m for m in events_of(node))
    # Same version: nothing to do.
    EdgeNode.objects.filter(pk=node.pk).update(agent_version=current)
    node.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        services.edge_node_upgrade_request(user=owner, node=node)
    assert f"already runs version {current}" in error(exc)


def test_agent_bundle_needs_the_agent_key(owner, workspace):
    node, token = services.edge_node_create(user=owner, workspace=workspace, name="bundle")
    anonymous = Client()
    key = anonymous.post(f"{API}/enroll/", {"token": token}, content_type="application/json").json()["agent_key"]
    assert anonymous.get(f"{API}/agent/").status_code == 401
    assert anonymous.get(f"{API}/agent/", HTTP_AUTHORIZATION="Agent wrong").status_code == 401
    bundle = anonymous.get(f"{API}/agent/", HTTP_AUTHORIZATION=f"Agent {key}").json()
    source = bundle["files"]["agent.py"]
    assert bundle["version"] == services.agent_version_current()
    assert hashlib.sha256(source.encode()).hexdigest() == bundle["sha256"]["agent.py"]


# ---- node page --------------------------------------------------------------------------------


def test_node_page_says_no_npu_and_no_gpu_instead_of_empty_charts(owner, workspace):
    node = running_node(owner, workspace)
    client = Client()
    client.force_login(owner)
    url = reverse("deployment:edge_node_detail", args=[node.pk])
    page = client.get(url).content.decode()
    assert "No NPU on this node" in page and "No GPU on this node" in page
    assert 'data-testid="upgrade-agent"' in page
    EdgeNode.objects.filter(pk=node.pk).update(accelerator="ascend")
    from django.utils import timezone

    EdgeNodeSample.objects.create(node=node, at=timezone.now(), cpu_percent=1, memory_percent=1, disk_percent=1,
                                  gpus=[{"index": 0, "util": 5, "memory": 5}])
    page = client.get(url).content.decode()
    assert "No GPU on this node" not in page
    assert "No NPU on this node" in page and "created with an Ascend accelerator" in page
