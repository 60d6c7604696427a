"""The real edge agent: a `python -m apps.deployment.edge.agent` process enrols with its one-time
token (reuse and expiry refused), heartbeats, runs a run-engine worker on the node's own pool,
serves an edge service on its mapped host port and a load balancer round-robin over two
instances, applies its log settings, stops its worker taking new work while frozen (and resumes when unfrozen),
realises host-path and temp-path volumes as links in the instance's run directory, and leaves
the node FAULTY when killed. An older agent runs an asynchronous service (its instance sees the
stream count and start parameters), reports an NFS volume it cannot mount, and upgrades itself in
place when asked, keeping its worker and instances."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import httpx
import psutil
import pytest
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.models import Event
from apps.deployment.choices import ModelStatus
from apps.deployment.models import AiAppVersion
from apps.deployment.edge import serving, services
from apps.deployment.edge.choices import EdgeNodeStatus, EdgeServiceStatus
from apps.deployment.edge.models import EdgeNode, EdgeService
from apps.runtime.choices import RunStatus
from apps.runtime.models import Run, WorkerNode
from apps.runtime.services import run_submit
from tests.deployment.conftest import FAST, make_version, upload_package, wait_for
from tests.deployment.packages import fixture_package
from tests.harness import ROOT, free_port, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


READER = """
import os

from model_service.model_service import SingleNodeService


class ReaderService(SingleNodeService):
    def __init__(self, model_name, model_path):
        pass

    def _preprocess(self, data):
        return data

    def _inference(self, data):
        root = os.environ["EDGE_MOUNT_ROOT"]
        with open(os.path.join(root, "mnt/data", data["file"])) as handle:
            content = handle.read()
        with open(os.path.join(root, "scratch", "note.txt"), "w") as handle:
            handle.write("scratch")
        return {"content": content, "root": root, "scratch_written": True}

    def _postprocess(self, data):
        return data
"""


def reader_version(owner, workspace, tmp_path):
    """An edge AI application that reads a file under its /mnt/data mount and writes under /scratch."""
    root = fixture_package("echo", tmp_path / "reader-src")
    (root / "model" / "customize_service.py").write_text(READER)
    return make_version(owner, workspace, upload_package(root, "models", "reader"), name="reader",
                        deploy_types=("edge",))


def start_agent(url: str, token: str, state_dir) -> subprocess.Popen:
    env = subprocess_env(**FAST)
    return subprocess.Popen([sys.executable, "-m", "apps.deployment.edge.agent", "--console", url, "--token", token,
                             "--state-dir", str(state_dir), "--concurrency", "4"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def test_agent_enrols_serves_balances_and_goes_faulty(asgi_server, celery_worker, owner, workspace, echo_uri,
                                                      cpu_flavor, tmp_path, settings):
    for name, value in FAST.items():
        setattr(settings, name, int(value) if value.isdigit() else value)
    settings.ATELIER_EDGE_HEARTBEAT_SECONDS = 1
    settings.ATELIER_EDGE_FAULTY_SECONDS = 5  # slack for a loaded machine
    # Imported here before the control worker starts: its own import task then finds them Normal
    # (both importing at once would race on the snapshot files).
    version = make_version(owner, workspace, echo_uri, name="echo-edge", deploy_types=("edge",))
    version_with_files = reader_version(owner, workspace, tmp_path)
    celery_worker(queues=("atelier.control",), env=FAST)  # dispatch and sweeps; runs go to the edge node's pool
    node, token = services.edge_node_create(user=owner, workspace=workspace, name="edge-a", app_log_level="INFO",
                                            log_retention_days=3)
    # An expired token is refused and spends nothing.
    late, late_token = services.edge_node_create(user=owner, workspace=workspace, name="edge-late")
    EdgeNode.objects.filter(pk=late.pk).update(token_expires_at=timezone.now() - timedelta(minutes=1))
    refused = start_agent(asgi_server.url, late_token, tmp_path / "late")
    assert refused.wait(timeout=60) == 2 and "expired" in refused.stdout.read()

    agent = start_agent(asgi_server.url, token, tmp_path / "a")
    try:
        wait_for(lambda: EdgeNode.objects.get(pk=node.pk).status == EdgeNodeStatus.RUNNING, timeout=60,
                 message="the agent's first heartbeat")
        wait_for(lambda: WorkerNode.objects.filter(hostname__startswith=f"edge-{node.pk}@", status="online",
                                                   pools__name=f"edge-node-{node.pk}").exists(),
                 timeout=60, message="the node's run-engine worker")
        # The token is spent: a second agent with it is refused.
        again = start_agent(asgi_server.url, token, tmp_path / "b")
        assert again.wait(timeout=60) == 2 and "already used" in again.stdout.read()
        # Log settings reached the agent.
        applied = json.loads((tmp_path / "a" / "log-settings.json").read_text())
        assert applied == {"retention_days": 3, "system_level": "DEBUG", "app_level": "INFO", "total_mb": 50,
                           "file_mb": 10, "rotate_days": 5}
        assert (tmp_path / "a" / "logs" / "agent.log").exists()

        node.refresh_from_db()
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=1)
        node.refresh_from_db()
        host_port = free_port()
        mapped = serving.edge_service_deploy(
            user=owner, workspace=workspace, name="mapped", model_version=version, flavor=cpu_flavor, node=node,
            port_mappings=[{"container_port": 8080, "host_port": host_port}])
        pair = serving.edge_service_deploy(user=owner, workspace=workspace, name="pair", model_version=version,
                                           flavor=cpu_flavor, node=node, instance_count=2)
        for service in (mapped, pair):
            wait_for(lambda s=service: EdgeService.objects.get(pk=s.pk).status == EdgeServiceStatus.RUNNING,
                     timeout=120, message=f"{service.name} running")
        # Every instance runs on the edge node's own worker, through the run engine.
        workers = set(Run.objects.filter(edge_instance__service__node=node).values_list("worker__hostname", flat=True))
        assert len(workers) == 1 and workers.pop().startswith(f"edge-{node.pk}@")
        # The mapped instance answers a prediction on its host port.
        answer = httpx.post(f"http://127.0.0.1:{host_port}/", json={"data": {"req_data": [{"x": 2, "y": 3}]}},
                            timeout=10)
        assert answer.status_code == 200 and answer.json()["data"]["resp_data"][0]["sum"] == 5

        listen = free_port()
        serving.load_balancer_create(user=owner, workspace=workspace, name="lb", node=node, listen_port=listen,
                                     rules=[{"match": "prefix", "path": "/", "service": pair.pk}])
        endpoints = {i.run.endpoint for i in pair.instances.select_related("run")}
        assert len(endpoints) == 2

        def balanced():
            try:
                seen = [httpx.post(f"http://127.0.0.1:{listen}/", json={"data": {"req_data": [{"x": 1, "y": 1}]}},
                                   timeout=10) for _ in range(4)]
            except httpx.HTTPError:
                return None
            return seen if all(r.status_code == 200 for r in seen) else None

        seen = wait_for(balanced, timeout=30, interval=0.5, message="the load balancer")
        assert [r.json()["data"]["resp_data"][0]["sum"] for r in seen] == [2, 2, 2, 2]
        picked = [r.headers["x-edge-instance"] for r in seen]
        assert set(picked) == endpoints and picked[0] != picked[1] and picked[0] == picked[2]  # round-robin

        # Freeze: the node's worker stops taking new work (the running instances keep serving);
        # unfreezing restores it.
        log = tmp_path / "a" / "logs" / "agent.log"
        services.edge_node_freeze(user=owner, node=node, frozen=True)
        wait_for(lambda: "stopped taking work (frozen)" in log.read_text(), timeout=30,
                 message="the agent to stop its worker consuming")
        node.refresh_from_db()
        with pytest.raises(ValidationError) as refused_deploy:
            serving.edge_service_deploy(user=owner, workspace=workspace, name="frozen", model_version=version,
                                        flavor=cpu_flavor, node=node)
        assert "cannot take services: it is FREEZE" in str(refused_deploy.value)
        # Work on the node's queue (an instance deployed just before the freeze) waits while frozen.
        queued = run_submit(user=owner, workspace=workspace, name="while frozen", command=[sys.executable, "-c", "pass"],
                            flavor=cpu_flavor, pool=node.pool, job_type="inference")[0]
        time.sleep(3)  # three heartbeats
        assert Run.objects.get(pk=queued.pk).status == RunStatus.QUEUED
        assert httpx.post(f"http://127.0.0.1:{host_port}/", json={"data": {"req_data": [{"x": 1, "y": 1}]}},
                          timeout=10).status_code == 200  # still serving
        services.edge_node_freeze(user=owner, node=node, frozen=False)
        wait_for(lambda: Run.objects.get(pk=queued.pk).status != RunStatus.QUEUED, timeout=30,
                 message="the waiting run taken after unfreezing")
        wait_for(lambda: "resumed taking work" in log.read_text(), timeout=30, message="the agent's resume log")

        # Volumes: a host path read in place through its link at the mount path, and a temp path
        # folder that the instance writes to and that goes with the run directory.
        shared = tmp_path / "node-data"
        shared.mkdir()
        (shared / "greeting.txt").write_text("hello from the node")
        reader_port = free_port()
        node.refresh_from_db()
        reader = serving.edge_service_deploy(
            user=owner, workspace=workspace, name="reader", model_version=version_with_files,
            flavor=cpu_flavor, node=node, port_mappings=[{"container_port": 8080, "host_port": reader_port}],
            volumes=[{"name": "data", "type": "host_path", "host_path": str(shared), "mount_path": "/mnt/data",
                      "read_only": True},
                     {"name": "scratch", "type": "temp_path", "mount_path": "/scratch"}])
        wait_for(lambda: EdgeService.objects.get(pk=reader.pk).status == EdgeServiceStatus.RUNNING, timeout=120,
                 message="the service with volumes running")
        body = httpx.post(f"http://127.0.0.1:{reader_port}/", json={"file": "greeting.txt"}, timeout=10).json()
        assert body["content"] == "hello from the node" and body["scratch_written"]
        run_dir = Path(body["root"])
        # The mount path is a link: to the folder itself, or to its read-only bind where the node may mount.
        assert (run_dir / "mnt" / "data").is_symlink()
        assert (run_dir / "mnt" / "data" / "greeting.txt").read_text() == "hello from the node"
        assert (run_dir / "volumes" / "scratch" / "note.txt").exists()
        serving.edge_service_delete(user=owner, service=reader)
        wait_for(lambda: not run_dir.exists(), timeout=30, message="the run directory (and temp path) wiped")
        assert (shared / "greeting.txt").read_text() == "hello from the node"  # the host folder stays
    finally:
        os.killpg(agent.pid, signal.SIGKILL)  # a powered-off machine: no goodbye
        agent.wait(timeout=10)
    wait_for(lambda: EdgeNode.objects.get(pk=node.pk).status == EdgeNodeStatus.FAULTY, timeout=15,
             message="FAULTY after missed heartbeats")


VIDEO = """
import json
import os

from model_service.model_service import SingleNodeService


class VideoService(SingleNodeService):
    def __init__(self, model_name, model_path):
        pass

    def _preprocess(self, data):
        return data

    def _inference(self, data):
        return {"streams": os.environ.get("EDGE_STREAM_COUNT"), "camera": os.environ.get("CAMERA_URL"),
                "threshold": os.environ.get("THRESHOLD"), "params": json.loads(os.environ["EDGE_START_PARAMS"]),
                "pid": os.getpid()}

    def _postprocess(self, data):
        return data
"""


def video_version(owner, workspace, tmp_path):
    """An asynchronous edge application that answers with the stream count and start parameters it got."""
    from apps.deployment import services as app_services

    root = fixture_package("echo", tmp_path / "video-src")
    (root / "model" / "customize_service.py").write_text(VIDEO)
    row = app_services.ai_app_create(
        user=owner, workspace=workspace, name="video", source_uri=upload_package(root, "models", "video"),
        request_mode="async", deploy_types=["edge"],
        start_params=[{"name": "THRESHOLD", "default": "0.5"}, {"name": "CAMERA_URL", "required": True}])
    # The control-queue worker imports it (importing here too would race it).
    wait_for(lambda: AiAppVersion.objects.get(pk=row.pk).status == ModelStatus.NORMAL, timeout=60,
             message="the video version imported")
    row.refresh_from_db()
    return row


def worker_pids(agent_pid: int) -> set[int]:
    return {p.pid for p in psutil.Process(agent_pid).children()
            if "celery" in " ".join(p.cmdline()) and "worker" in p.cmdline()}


def test_old_agent_runs_async_service_reports_nfs_and_upgrades_in_place(asgi_server, celery_worker, owner, workspace,
                                                                          cpu_flavor, models_bucket, tmp_path,
                                                                          settings):
    for name, value in FAST.items():
        setattr(settings, name, int(value) if value.isdigit() else value)
    settings.ATELIER_EDGE_HEARTBEAT_SECONDS = 1
    settings.ATELIER_EDGE_FAULTY_SECONDS = 10  # slack for a loaded machine (an upgrade restarts the agent)
    celery_worker(queues=("atelier.control",), env=FAST)
    version = video_version(owner, workspace, tmp_path)
    current = services.agent_version_current()
    # An agent of an older release: the console's program with an older VERSION, run as a file.
    old = tmp_path / "old-agent"
    old.mkdir()
    source = (ROOT / "apps" / "deployment" / "edge" / "agent.py").read_text()
    assert f'VERSION = "{current}"' in source
    (old / "agent.py").write_text(source.replace(f'VERSION = "{current}"', 'VERSION = "1.0.0"'))
    node, token = services.edge_node_create(user=owner, workspace=workspace, name="edge-old")
    state = tmp_path / "state"
    output = open(tmp_path / "agent.out", "w")
    agent = subprocess.Popen([sys.executable, str(old / "agent.py"), "--console", asgi_server.url, "--token", token,
                              "--state-dir", str(state), "--concurrency", "4"], cwd=ROOT,
                             env=subprocess_env(**FAST, ATELIER_EDGE_ROOT=str(ROOT), PYTHONPATH=str(ROOT)),
                             stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: EdgeNode.objects.get(pk=node.pk).status == EdgeNodeStatus.RUNNING, timeout=60,
                 message="the old agent's first heartbeat")
        wait_for(lambda: WorkerNode.objects.filter(hostname__startswith=f"edge-{node.pk}@", status="online",
                                                   pools__name=f"edge-node-{node.pk}").exists(),
                 timeout=60, message="the node's run-engine worker")
        node.refresh_from_db()
        assert node.agent_version == "1.0.0"
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=1)
        node.refresh_from_db()

        # Async deployment: the instance gets the stream count and the parameters (defaults filled in).
        port = free_port()
        video = serving.edge_service_deploy(
            user=owner, workspace=workspace, name="cams", model_version=version, flavor=cpu_flavor, node=node,
            stream_count=3, start_params={"CAMERA_URL": "rtsp://cam/1"},
            port_mappings=[{"container_port": 8080, "host_port": port}])
        try:
            wait_for(lambda: EdgeService.objects.get(pk=video.pk).status == EdgeServiceStatus.RUNNING, timeout=120,
                     message="the async service running")
        except AssertionError:
            output.flush()
            runs = list(Run.objects.filter(edge_instance__service=video).values("status", "status_reason", "worker_id"))
            raise AssertionError(f"{runs}\n{(tmp_path / 'agent.out').read_text()[-4000:]}") from None
        seen = httpx.post(f"http://127.0.0.1:{port}/", json={"frame": 1}, timeout=10).json()
        assert (seen["streams"], seen["camera"], seen["threshold"]) == ("3", "rtsp://cam/1", "0.5")
        assert seen["params"] == {"CAMERA_URL": "rtsp://cam/1", "THRESHOLD": "0.5"}

        # NFS: this node has no NFS client (or the server does not resolve): the deploy fails with the
        # node's reason, and the instance is not restarted in vain.
        nfs = serving.edge_service_deploy(
            user=owner, workspace=workspace, name="nfs", model_version=version, flavor=cpu_flavor, node=node,
            stream_count=1, start_params={"CAMERA_URL": "x"},
            volumes=[{"name": "share", "type": "nfs", "source": "nfs.invalid:/export", "mount_path": "/data"}])
        failed = wait_for(lambda: (s := EdgeService.objects.get(pk=nfs.pk)).status == EdgeServiceStatus.ABNORMAL
                          and s, timeout=120, message="the NFS service abnormal")
        assert failed.status_reason.startswith('Volume "share": ') and "NFS" in failed.status_reason
        run = Run.objects.get(edge_instance__service=nfs)
        wait_for(lambda: Run.objects.get(pk=run.pk).is_terminal, timeout=60, message="the NFS instance ended")
        assert Run.objects.get(pk=run.pk).status_reason == failed.status_reason

        # Upgrade: UPGRADING, the program fetched over the agent key, re-exec in place, RUNNING again
        # with the console's version; the worker (and so the instance) is adopted, not restarted.
        workers = worker_pids(agent.pid)
        assert len(workers) == 1
        services.edge_node_upgrade_request(user=owner, node=node)
        wait_for(lambda: (n := EdgeNode.objects.get(pk=node.pk)).agent_version == current and not n.upgrade_requested,
                 timeout=60, message="the agent back with the new version")
        node.refresh_from_db()
        assert node.status == EdgeNodeStatus.RUNNING
        messages = list(Event.objects.filter(content_type=ContentType.objects.get_for_model(EdgeNode),
                                             object_id=str(node.pk)).values_list("message", flat=True))
        assert "Agent is upgrading (from 1.0.0)." in messages
        assert any(m.startswith(f"Agent upgraded to {current}") for m in messages)
        assert agent.poll() is None  # the same process, re-executed
        assert str(state / "agent" / current / "agent.py") in psutil.Process(agent.pid).cmdline()
        assert worker_pids(agent.pid) == workers
        again = httpx.post(f"http://127.0.0.1:{port}/", json={"frame": 2}, timeout=10).json()
        assert again["pid"] == seen["pid"] and again["streams"] == "3"
        output.flush()
        assert "adopted worker" in (tmp_path / "agent.out").read_text()
        wait_for(lambda: EdgeNode.objects.get(pk=node.pk).last_heartbeat > node.last_heartbeat, timeout=15,
                 message="heartbeats from the upgraded agent")
    finally:
        os.killpg(agent.pid, signal.SIGKILL)
        agent.wait(timeout=10)
        output.close()
