"""Edge module without processes: enrolment tokens, derived node statuses, activation, log
settings, pools and delete ordering, edge service / load balancer / access port validation, the
REST API's refusals and workspace isolation. The real agent is in test_edge_agent.py."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from apps.deployment.edge import serving, services
from apps.deployment.edge.choices import EdgeNodeStatus
from apps.deployment.edge.models import EdgeNode, EdgeNodeSample, EdgeService
from apps.runtime.models import Run
from tests.deployment.conftest import make_version

pytestmark = pytest.mark.django_db

API = "/api/v1/deployment/edge"


def running_node(owner, workspace, name="edge-1", activate=True) -> EdgeNode:
    """A node whose agent enrolled and heartbeat (and, by default, activated for a month)."""
    node, token = services.edge_node_create(user=owner, workspace=workspace, name=name)
    node, _ = services.edge_node_enroll(token=token, host="10.0.0.5", os_name="Linux", arch="x86_64")
    services.edge_node_heartbeat(node=node, cpu_percent=10, memory_percent=20, disk_percent=30)
    if activate:
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=1)
    node.refresh_from_db()
    return node


@pytest.fixture
def edge_version(owner, workspace, echo_uri):
    return make_version(owner, workspace, echo_uri, name="echo-edge", deploy_types=("online", "edge"))


def error(exc_info) -> str:
    return " ".join(m for ms in exc_info.value.message_dict.values() for m in ms)


# ---- nodes ------------------------------------------------------------------------------------


def test_enrolment_token_is_one_time_hashed_and_expires(owner, workspace, settings):
    node, token = services.edge_node_create(user=owner, workspace=workspace, name="gate-1")
    assert token.startswith("edg_") and token not in node.token_hash and len(node.token_hash) == 64
    assert node.status == EdgeNodeStatus.UNCONNECTED
    assert node.pool.name == f"edge-node-{node.pk}" and node.log_size_mb == 50 and node.log_file_mb == 10
    assert (node.system_log_level, node.app_log_level, node.log_rotate_days) == ("DEBUG", "DEBUG", 5)
    assert abs((node.token_expires_at - timezone.now()) - timedelta(hours=24)) < timedelta(minutes=1)
    enrolled, key = services.edge_node_enroll(token=token, host="10.0.0.9")
    assert enrolled.pk == node.pk and services.edge_node_by_agent_key(key).pk == node.pk
    with pytest.raises(services.EnrolError, match="already used"):
        services.edge_node_enroll(token=token)
    other, token2 = services.edge_node_create(user=owner, workspace=workspace, name="gate-2")
    EdgeNode.objects.filter(pk=other.pk).update(token_expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(services.EnrolError, match="expired"):
        services.edge_node_enroll(token=token2)
    with pytest.raises(services.EnrolError, match="Unknown"):
        services.edge_node_enroll(token="edg_nothing")
    other.refresh_from_db()
    assert other.agent_key_hash == "" and other.token_used_at is None  # refusals changed nothing


def test_status_follows_heartbeats_freeze_and_upgrade(owner, workspace, settings):
    settings.ATELIER_EDGE_FAULTY_SECONDS = 30
    settings.ATELIER_EDGE_SAMPLE_SECONDS = 300
    node = running_node(owner, workspace, activate=False)
    assert node.status == EdgeNodeStatus.RUNNING
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=2, disk_percent=3)
    assert EdgeNodeSample.objects.filter(node=node).count() == 1  # one sample per 5 minutes
    EdgeNodeSample.objects.filter(node=node).update(at=timezone.now() - timedelta(seconds=301))
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=2, disk_percent=3, upgrading=True)
    assert EdgeNodeSample.objects.filter(node=node).count() == 2
    node.refresh_from_db()
    assert node.status == EdgeNodeStatus.UPGRADING
    later = timezone.now() + timedelta(seconds=31)
    assert node.current_status(later) == EdgeNodeStatus.FAULTY
    from apps.core.models import Event
    from apps.deployment.sweep import deployment_sweep

    assert deployment_sweep(now=later)["edge_faulty"] == 1
    assert deployment_sweep(now=later + timedelta(seconds=10))["edge_faulty"] == 0  # one event per outage
    assert Event.objects.filter(object_id=str(node.pk), message__startswith="Node is faulty").count() == 1
    services.edge_node_freeze(user=owner, node=node, frozen=True)
    assert node.status == EdgeNodeStatus.FREEZE


def test_activation_rules(owner, workspace, teammate):
    fresh, _ = services.edge_node_create(user=owner, workspace=workspace, name="never")
    with pytest.raises(ValidationError) as exc:
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[fresh], months=1)
    assert "UNCONNECTED" in error(exc)
    node = running_node(owner, workspace, activate=False)
    with pytest.raises(ValidationError) as exc:
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=2)
    assert "1 or 3 months" in error(exc)
    with pytest.raises(ValidationError) as exc:
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node] * 51, months=1)
    assert "at most 50" in error(exc)
    from django.core.exceptions import PermissionDenied
    with pytest.raises(PermissionDenied):
        services.edge_nodes_activate(user=teammate, workspace=workspace, nodes=[node], months=1)
    services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=3)
    node.refresh_from_db()
    assert node.is_activated and node.schedulable
    assert abs((node.activated_until - timezone.now()) - timedelta(days=90)) < timedelta(minutes=1)
    with pytest.raises(ValidationError) as exc:
        services.edge_nodes_activate(user=owner, workspace=workspace, nodes=[node], months=1)
    assert "already activated" in error(exc)
    EdgeNode.objects.filter(pk=node.pk).update(activated_until=timezone.now() - timedelta(seconds=1))
    node.refresh_from_db()
    assert not node.schedulable  # expired → not schedulable


def test_node_field_validation(owner, workspace):
    cases = [
        (dict(name=""), "name", "1–64"),
        (dict(name="x" * 65), "name", "1–64"),
        (dict(name="ok", description="a#b"), "description", "#"),
        (dict(name="ok", description="x" * 256), "description", "255"),
        (dict(name="ok", log_retention_days=31), "log_retention_days", "from 1 to 30"),
        (dict(name="ok", log_retention_days=0), "log_retention_days", "from 1 to 30"),
        (dict(name="ok", system_log_level="TRACE"), "system_log_level", "DEBUG"),
        (dict(name="ok", accelerator="tpu"), "accelerator", "gpu"),
    ]
    for kwargs, field, text in cases:
        with pytest.raises(ValidationError) as exc:
            services.edge_node_create(user=owner, workspace=workspace, **kwargs)
        assert field in exc.value.message_dict and text in error(exc), kwargs
    assert not EdgeNode.objects.exists()
    node, _ = services.edge_node_create(user=owner, workspace=workspace, name="边缘-1")
    services.edge_node_log_settings_update(user=owner, node=node, log_retention_days=30, system_log_level="ERROR",
                                           app_log_level="INFO", log_rotate_days=5)
    node.refresh_from_db()
    assert (node.log_retention_days, node.system_log_level, node.app_log_level) == (30, "ERROR", "INFO")


# ---- pools and delete ordering ----------------------------------------------------------------


def test_pool_rules_and_delete_ordering(owner, workspace, edge_version, cpu_flavor):
    nodes = [running_node(owner, workspace, name=f"n{i}") for i in range(5)]
    ids = [n.pk for n in nodes]
    for kwargs, field, text in [
        (dict(masters=ids[:4]), "masters", "1 to 3"),
        (dict(masters=[]), "masters", "1 to 3"),
        (dict(masters=ids[:1], max_workers=65), "max_workers", "from 1 to 64"),
        (dict(masters=ids[:1], max_workers=0), "max_workers", "from 1 to 64"),
        (dict(masters=ids[:2], workers=ids[1:3]), "workers", "both a master and a worker"),
        (dict(masters=ids[:1], workers=ids[1:4], max_workers=2), "workers", "At most 2"),
    ]:
        with pytest.raises(ValidationError) as exc:
            services.edge_pool_create(user=owner, workspace=workspace, name="p", **kwargs)
        assert field in exc.value.message_dict and text in error(exc), kwargs
    pool = services.edge_pool_create(user=owner, workspace=workspace, name="p1", masters=ids[:1], workers=ids[1:2])
    with pytest.raises(ValidationError) as exc:
        services.edge_pool_create(user=owner, workspace=workspace, name="p2", masters=ids[1:2])
    assert 'already belongs to pool "p1"' in error(exc)
    master, worker = EdgeNode.objects.get(pk=ids[0]), EdgeNode.objects.get(pk=ids[1])
    with pytest.raises(ValidationError) as exc:
        services.edge_node_delete(user=owner, node=master)
    assert "master nodes cannot be deleted" in error(exc)
    with pytest.raises(ValidationError) as exc:
        services.edge_node_delete(user=owner, node=worker)
    assert "remove it from the pool first" in error(exc)
    service = serving.edge_service_deploy(user=owner, workspace=workspace, name="on-pool", model_version=edge_version,
                                          flavor=cpu_flavor, edge_pool=pool)
    assert Run.objects.filter(edge_instance__service=service, pool=pool.pool).count() == 1
    with pytest.raises(ValidationError) as exc:
        services.edge_pool_delete(user=owner, pool=pool)
    assert "has edge services: delete them first" in error(exc)
    serving.edge_service_delete(user=owner, service=service)
    services.edge_pool_worker_remove(user=owner, pool=pool, node=worker)
    services.edge_node_delete(user=owner, node=worker)
    services.edge_pool_delete(user=owner, pool=pool)
    master.refresh_from_db()
    assert master.edge_pool_id is None and not master.is_master
    services.edge_node_delete(user=owner, node=master)  # no longer a master


# ---- edge services ----------------------------------------------------------------------------


def test_edge_service_validation(owner, workspace, edge_version, cpu_flavor, echo_version, settings):
    node = running_node(owner, workspace)
    base = dict(user=owner, workspace=workspace, model_version=edge_version, flavor=cpu_flavor, node=node)
    cases = [
        (dict(name="a", model_version=echo_version), "model_version", "not created for edge"),
        (dict(name="a", port_mappings=[{"container_port": 0, "host_port": 8000}]), "port_mappings", "container port"),
        (dict(name="a", port_mappings=[{"container_port": 8080, "host_port": 70000}]), "port_mappings", "host port"),
        (dict(name="a", port_mappings=[{"container_port": 8080, "host_ip": "nic0", "host_port": 80}]),
         "port_mappings", "not an IP address"),
        (dict(name="a", instance_count=2, port_mappings=[{"container_port": 8080, "host_port": 8000}]),
         "port_mappings", "one instance"),
        (dict(name="a", instance_count=3, port_mappings=[{"container_port": 8080, "port_min": 9000, "port_max": 9001}]),
         "port_mappings", "2 free ports for 3"),
        (dict(name="a", port_mappings=[{"container_port": 8080, "port_min": 9001, "port_max": 9000}]),
         "port_mappings", "empty"),
        (dict(name="a", volumes=[{"name": "Data", "type": "host_path", "host_path": "/d", "mount_path": "/m"}]),
         "volumes", "lowercase"),
        (dict(name="a", volumes=[{"name": "d", "type": "host_path", "host_path": "/a/../etc", "mount_path": "/m"}]),
         "volumes", "host path"),
        (dict(name="a", volumes=[{"name": "d", "type": "temp_path", "mount_path": "rel"}]), "volumes", "mount path"),
        (dict(name="a", volumes=[{"name": "d", "type": "nfs", "mount_path": "/m"}]), "volumes", "NFS"),
        (dict(name="a", start_params={"ATELIER_X": "1"}), "start_params", "not a usable variable name"),
        (dict(name="a", instance_count=0), "instance_count", "from 1 to 16"),
    ]
    for kwargs, field, text in cases:
        with pytest.raises(ValidationError) as exc:
            serving.edge_service_deploy(**{**base, **kwargs})
        assert field in exc.value.message_dict and text in error(exc), kwargs
    assert not EdgeService.objects.exists() and not Run.objects.exists()
    service = serving.edge_service_deploy(
        **base, name="ok", port_mappings=[{"container_port": 8080, "host_port": 18080}],
        volumes=[{"name": "data", "type": "host_path", "host_path": "/srv/data", "mount_path": "/data", "read_only": True},
                 {"name": "scratch", "type": "temp_path", "mount_path": "/tmp/scratch"}],
        start_params={"MODE": "fast"})
    run = Run.objects.get(edge_instance__service=service)
    assert run.env["PORT"] == "18080" and run.env["MODE"] == "fast" and run.pool_id == node.pool_id
    assert run.command[1].endswith("edge/volumes.py") and run.long_lived
    assert json.loads(run.command[3])[0] == {"name": "data", "type": "host_path", "mount_path": "/data",
                                             "read_only": True, "host_path": "/srv/data"}
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_deploy(**base, name="clash", port_mappings=[{"container_port": 8080, "host_port": 18080}])
    assert "already used by another edge service" in error(exc)
    settings.ATELIER_EDGE_MAX_SERVICES = 1
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_deploy(**base, name="too-many")
    assert "reached its 1 edge services" in error(exc)
    EdgeNode.objects.filter(pk=node.pk).update(activated_until=timezone.now() - timedelta(days=1))
    settings.ATELIER_EDGE_MAX_SERVICES = 1000
    node.refresh_from_db()
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_deploy(**{**base, "node": node}, name="expired")
    assert "not activated" in error(exc)


def test_load_balancer_and_access_port_validation(owner, workspace, edge_version, cpu_flavor):
    node = running_node(owner, workspace)
    service = serving.edge_service_deploy(user=owner, workspace=workspace, name="svc", model_version=edge_version,
                                          flavor=cpu_flavor, node=node)
    rule = {"match": "prefix", "path": "/v1", "service": service.pk}
    base = dict(user=owner, workspace=workspace, name="lb", node=node, listen_port=8000, rules=[rule])
    cases = [
        (dict(listen_port=0), "listen_port", "from 1 to 65535"),
        (dict(listen_port=65536), "listen_port", "from 1 to 65535"),
        (dict(rules=[]), "rules", "at least one"),
        (dict(rules=[{**rule, "match": "glob"}]), "rules", "prefix, exact or regex"),
        (dict(rules=[{**rule, "path": ""}]), "rules", "required"),
        (dict(rules=[{**rule, "path": "v1"}]), "rules", "start with /"),
        (dict(rules=[{**rule, "path": "/v1?x"}]), "rules", "letters, digits, *, / and -"),
        (dict(rules=[{**rule, "path": "/" + "a" * 255}]), "rules", "256 characters; at most 255"),
        (dict(rules=[{**rule, "match": "regex", "path": "/a**"}]), "rules", "not a valid regular expression"),
        (dict(rules=[{**rule, "service": 0}]), "rules", "choose an edge service"),
    ]
    for kwargs, field, text in cases:
        with pytest.raises(ValidationError) as exc:
            serving.load_balancer_create(**{**base, **kwargs})
        assert field in exc.value.message_dict and text in error(exc), kwargs
    lb = serving.load_balancer_create(**base, sticky=True)
    assert (lb.protocol, lb.policy, lb.rules[0]["container_port"]) == ("HTTP", "round_robin", 8080)
    with pytest.raises(ValidationError) as exc:
        serving.load_balancer_create(**{**base, "name": "lb2"})
    assert "already a listen port" in error(exc)
    with pytest.raises(ValidationError) as exc:
        serving.access_port_create(user=owner, workspace=workspace, name="ap", service=service,
                                   ports=[{"protocol": "UDP", "port": 80, "container_port": 8080}])
    assert "only TCP" in error(exc)
    with pytest.raises(ValidationError) as exc:
        serving.access_port_create(user=owner, workspace=workspace, name="ap", service=service, ports=[])
    assert "at least one port" in error(exc)
    port = serving.access_port_create(user=owner, workspace=workspace, name="ap", service=service,
                                      ports=[{"port": 80, "container_port": 8080}])
    assert port.type == "ClusterIP" and port.ports == [{"protocol": "TCP", "port": 80, "container_port": 8080}]
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_delete(user=owner, service=service)
    assert "access ports" in error(exc)
    serving.access_port_delete(user=owner, port=port)
    with pytest.raises(ValidationError) as exc:
        serving.edge_service_delete(user=owner, service=service)
    assert 'Load balancer "lb" forwards' in error(exc)
    with pytest.raises(ValidationError) as exc:
        services.edge_node_delete(user=owner, node=node)
    assert "runs edge services" in error(exc)


# ---- API and pages ----------------------------------------------------------------------------


def test_api_enrol_heartbeat_isolation_and_lifecycle_refusal(api, outsider_api, owner, workspace, edge_version,
                                                             cpu_flavor):
    made = api.post(f"{API}/nodes/", {"name": "api-node", "log_retention_days": 3}, format="json")
    assert made.status_code == 201, made.content
    body = made.json()
    token, node_id = body["token"], body["id"]
    assert body["status"] == "UNCONNECTED" and body["log_retention_days"] == 3
    assert "token" not in api.get(f"{API}/nodes/{node_id}/").json()  # shown once
    bad = api.post(f"{API}/nodes/", {"name": "x", "log_retention_days": 40}, format="json")
    assert bad.status_code == 400 and "from 1 to 30" in str(bad.json())
    anonymous = Client()
    enrolled = anonymous.post(f"{API}/enroll/", {"token": token, "host": "10.1.1.1"}, content_type="application/json")
    assert enrolled.status_code == 201
    key = enrolled.json()["agent_key"]
    assert enrolled.json()["config"]["queues"] == [f"pool.edge-node-{node_id}"]
    again = anonymous.post(f"{API}/enroll/", {"token": token}, content_type="application/json")
    assert again.status_code == 403 and "already used" in again.json()["error"]["message"]
    beat = anonymous.post(f"{API}/heartbeat/", {"cpu_percent": 5}, content_type="application/json",
                          HTTP_AUTHORIZATION=f"Agent {key}")
    assert beat.status_code == 200 and beat.json()["logs"]["retention_days"] == 3
    assert anonymous.post(f"{API}/heartbeat/", {}, content_type="application/json",
                          HTTP_AUTHORIZATION="Agent nope").status_code == 401
    assert api.get(f"{API}/nodes/{node_id}/").json()["status"] == "RUNNING"
    assert api.post(f"{API}/nodes/activate/", {"nodes": [node_id], "months": 1}, format="json").status_code == 200
    deployed = api.post(f"{API}/services/", {"name": "api-svc", "model_version": edge_version.pk,
                                             "flavor": cpu_flavor.name, "node": node_id}, format="json")
    assert deployed.status_code == 201, deployed.content
    sid = deployed.json()["id"]
    refused = api.post(f"{API}/services/{sid}/stop/")
    assert refused.status_code == 409 and "not available for services deployed on edge" in refused.json()["error"]["message"]
    # Another workspace's objects answer 404, and nothing changes.
    for url in (f"{API}/nodes/{node_id}/", f"{API}/services/{sid}/"):
        assert outsider_api.get(url).status_code == 404
        assert outsider_api.delete(url).status_code == 404
    assert outsider_api.post(f"{API}/nodes/{node_id}/freeze/").status_code == 404
    assert EdgeService.objects.filter(pk=sid).exists() and not EdgeNode.objects.get(pk=node_id).frozen
    assert outsider_api.get(f"{API}/nodes/").json() == []


def test_pages_render_and_isolate(owner, outsider, workspace, edge_version, cpu_flavor):
    node = running_node(owner, workspace)
    service = serving.edge_service_deploy(user=owner, workspace=workspace, name="page-svc",
                                          model_version=edge_version, flavor=cpu_flavor, node=node)
    client = Client()
    client.force_login(owner)
    for name in ("edge_service_list", "edge_node_list", "edge_pool_list", "edge_lb_list", "edge_service_create"):
        assert client.get(reverse(f"deployment:{name}")).status_code == 200, name
    detail = client.get(reverse("deployment:edge_service_detail", args=[service.pk])).content.decode()
    assert "Start, stop and restart are not available" in detail and 'data-testid="restart">Restart' in detail
    node_page = client.get(reverse("deployment:edge_node_detail", args=[node.pk])).content.decode()
    assert "RUNNING" in node_page and 'id="monitoring-figures"' in node_page and "CPU usage" in node_page
    # The range select's endpoint: GPU charts appear once a sample reported GPUs; others answer 404.
    EdgeNodeSample.objects.create(node=node, at=timezone.now(), cpu_percent=50, memory_percent=60, disk_percent=70,
                                  gpus=[{"index": 0, "util": 80, "memory": 40}])
    monitoring = client.get(reverse("deployment:edge_node_monitoring", args=[node.pk]), {"range": "3h"}).json()
    assert [c["key"] for c in monitoring["charts"]] == ["cpu", "memory", "disk", "gpu_util", "gpu_memory"]
    assert monitoring["charts"][3]["figure"]["data"][0]["y"][-1] == 80
    outsider_client = Client()
    outsider_client.force_login(outsider)
    assert outsider_client.get(reverse("deployment:edge_node_monitoring", args=[node.pk])).status_code == 404
    created = client.post(reverse("deployment:edge_node_list"), {
        "name": "from-page", "accelerator": "none", "log_retention_days": 7, "system_log_level": "DEBUG",
        "app_log_level": "DEBUG", "log_rotate_days": 5})
    text = created.content.decode()
    assert created.status_code == 200 and "python -m apps.deployment.edge.agent --console" in text
    bad = client.post(reverse("deployment:edge_node_list"), {
        "name": "bad", "accelerator": "none", "log_retention_days": 99, "system_log_level": "DEBUG",
        "app_log_level": "DEBUG", "log_rotate_days": 5})
    assert bad.status_code == 400 and "from 1 to 30" in bad.content.decode()
    other = Client()
    other.force_login(outsider)
    assert other.get(reverse("deployment:edge_service_detail", args=[service.pk])).status_code == 404
    assert other.get(reverse("deployment:edge_node_detail", args=[node.pk])).status_code == 404
    assert other.post(reverse("deployment:edge_node_action", args=[node.pk, "freeze"])).status_code == 404


def test_list_query_counts_are_fixed(api, owner, workspace, edge_version, cpu_flavor, django_assert_max_num_queries):
    """Lists cost the same with one node and service as with three (STYLE 7)."""
    client = Client()
    client.force_login(owner)

    def counts():
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        out = []
        for fetch in (lambda: api.get(f"{API}/nodes/"), lambda: api.get(f"{API}/services/"),
                      lambda: client.get(reverse("deployment:edge_node_list")),
                      lambda: client.get(reverse("deployment:edge_service_list"))):
            with CaptureQueriesContext(connection) as ctx:
                assert fetch().status_code == 200
            out.append(len(ctx))
        return out

    node = running_node(owner, workspace, name="q0")
    serving.edge_service_deploy(user=owner, workspace=workspace, name="s0", model_version=edge_version,
                                flavor=cpu_flavor, node=node)
    one = counts()
    for i in range(1, 3):
        node = running_node(owner, workspace, name=f"q{i}")
        serving.edge_service_deploy(user=owner, workspace=workspace, name=f"s{i}", model_version=edge_version,
                                    flavor=cpu_flavor, node=node, instance_count=2)
    assert counts() == one
    with django_assert_max_num_queries(12):
        api.get(f"{API}/services/")


def test_pool_api_binds_and_unbinds_workers(api, outsider_api, owner, workspace):
    nodes = [running_node(owner, workspace, name=f"w{i}", activate=False) for i in range(4)]
    made = api.post(f"{API}/pools/", {"name": "pool-a", "max_workers": 2, "masters": [nodes[0].pk],
                                      "workers": [nodes[1].pk]}, format="json")
    assert made.status_code == 201, made.content
    pid = made.json()["id"]
    assert (made.json()["masters"], made.json()["workers"]) == ([nodes[0].pk], [nodes[1].pk])
    bad = api.post(f"{API}/pools/{pid}/workers/", {"nodes": ["x"]}, format="json")
    assert bad.status_code == 400 and "list of numbers" in str(bad.json())
    full = api.post(f"{API}/pools/{pid}/workers/", {"nodes": [nodes[2].pk, nodes[3].pk]}, format="json")
    assert full.status_code == 400 and "at most 2 workers" in str(full.json())
    assert api.post(f"{API}/pools/{pid}/workers/", {"nodes": [nodes[2].pk]}, format="json").status_code == 200
    master = api.delete(f"{API}/pools/{pid}/workers/{nodes[0].pk}/")
    assert master.status_code == 400 and "masters cannot be removed" in str(master.json())
    assert outsider_api.delete(f"{API}/pools/{pid}/workers/{nodes[2].pk}/").status_code == 404
    assert api.delete(f"{API}/pools/{pid}/workers/{nodes[2].pk}/").status_code == 204
    assert api.get(f"{API}/pools/{pid}/").json()["workers"] == [nodes[1].pk]
    assert api.delete(f"{API}/pools/{pid}/").status_code == 204
    assert not EdgeNode.objects.filter(edge_pool__isnull=False).exists()


def test_pool_page_adds_and_removes_workers(owner, outsider, workspace):
    nodes = [running_node(owner, workspace, name=f"p{i}", activate=False) for i in range(3)]
    pool = services.edge_pool_create(user=owner, workspace=workspace, name="pg", masters=[nodes[0].pk])
    client = Client()
    client.force_login(owner)
    url = reverse("deployment:edge_pool_workers", args=[pool.pk])
    assert client.post(url, {"nodes": [nodes[1].pk, nodes[2].pk]}).status_code == 302
    assert set(pool.nodes.filter(is_master=False).values_list("pk", flat=True)) == {nodes[1].pk, nodes[2].pk}
    page = client.get(reverse("deployment:edge_pool_list")).content.decode()
    assert "Remove p1 from pg" in page
    client.post(url, {"remove": nodes[0].pk})  # a master: refused with the reason
    assert EdgeNode.objects.get(pk=nodes[0].pk).is_master
    client.post(url, {"remove": nodes[1].pk})
    assert EdgeNode.objects.get(pk=nodes[1].pk).edge_pool_id is None
    other = Client()
    other.force_login(outsider)
    assert other.post(url, {"remove": nodes[2].pk}).status_code == 404
    assert EdgeNode.objects.get(pk=nodes[2].pk).edge_pool_id == pool.pk
