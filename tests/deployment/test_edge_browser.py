"""Edge pages in a real browser: the node list and its enrol dialog (a field error keeps the dialog
open; success shows the one-time token and the agent command), the Deploy edge service button and
form, and the edge service page with its disabled lifecycle buttons. Screenshots go to
$ATELIER_SCREENSHOTS (default: the system temp dir)."""
from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.deployment.edge import serving, services
from apps.deployment.edge.choices import EdgeServiceStatus
from apps.deployment.edge.models import EdgeNode, EdgeNodeSample, EdgeService
from tests.deployment.conftest import make_version
from tests.deployment.test_edge import running_node

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


def test_node_list_enrol_dialog_and_edge_service_page(page, asgi_server, login, owner, workspace, echo_uri,
                                                      cpu_flavor):
    login(page, owner, asgi_server.url)
    version = make_version(owner, workspace, echo_uri, name="echo-edge", deploy_types=("online", "edge"))
    node = running_node(owner, workspace, name="edge-east")
    service = serving.edge_service_deploy(user=owner, workspace=workspace, name="edge-echo", model_version=version,
                                          flavor=cpu_flavor, node=node,
                                          port_mappings=[{"container_port": 8080, "host_port": 18080}])

    page.goto(f"{asgi_server.url}/services/")
    page.click("[data-testid=deploy-edge]")
    expect(page.locator("h1")).to_have_text("Deploy edge service")
    page.fill("input[name=name]", "from-form")
    page.select_option("select[name=target]", f"node:{node.pk}")
    page.fill("input[name=container_port]", "8080")
    page.fill("input[name=host_port]", "18080")
    page.click("[data-testid=submit]")
    expect(page.locator("[data-field=container_port] .field-error")).to_contain_text(
        "Host port 18080 is already used by another edge service on this node.")

    page.goto(f"{asgi_server.url}/services/edge/nodes/")
    expect(page.locator("tr:has([data-node=edge-east])")).to_contain_text("RUNNING")
    page.click("[data-testid=create-node]")
    dialog = page.locator("dialog#enrol-node")
    expect(dialog).to_be_visible()
    dialog.locator("input[name=name]").fill("edge-west")
    dialog.locator("input[name=log_retention_days]").fill("45")
    page.screenshot(path=str(SHOTS / "edge-enrol-dialog.png"), full_page=True)
    dialog.locator("[data-testid=node-submit]").click()
    # The error comes back inside the reopened dialog.
    expect(page.locator("dialog#enrol-node [data-field=log_retention_days] .field-error")).to_contain_text(
        "from 1 to 30")
    page.locator("dialog#enrol-node input[name=log_retention_days]").fill("14")
    page.locator("dialog#enrol-node [data-testid=node-submit]").click()
    expect(page.locator("[data-testid=enrol-token]")).to_contain_text("shown once")
    token = page.locator("[data-testid=token-value]").inner_text()
    assert token.startswith("edg_")
    expect(page.locator("[data-testid=agent-command]")).to_contain_text(f"--token {token}")
    assert EdgeNode.objects.get(name="edge-west").log_retention_days == 14
    expect(page.locator("tr:has([data-node=edge-west])")).to_contain_text("UNCONNECTED")
    page.screenshot(path=str(SHOTS / "edge-node-list.png"), full_page=True)
    # The list is a shared table: search narrows it, and statuses refresh without a reload.
    page.fill("#edge-nodes-q", "west")
    expect(page.locator("#edge-nodes-results tbody tr")).to_have_count(1)
    expect(page.locator("#edge-nodes-results .form-errors")).to_have_count(0)
    page.fill("#edge-nodes-q", "")
    expect(page.locator("#edge-nodes-results tbody tr")).to_have_count(2)
    services.edge_node_freeze(user=owner, node=node, frozen=True)
    expect(page.locator("tr:has([data-node=edge-east])")).to_contain_text("FREEZE", timeout=12_000)

    # Node monitoring as charts (CPU, memory, disk, and GPU once a sample reported one).
    now = timezone.now()
    EdgeNodeSample.objects.bulk_create(
        EdgeNodeSample(node=node, at=now - timedelta(minutes=5 * i), cpu_percent=20 + (i * 7) % 50,
                       memory_percent=40 + i % 5, disk_percent=30, gpus=[{"index": 0, "util": (i * 13) % 90, "memory": 35}])
        for i in range(1, 24))
    page.goto(f"{asgi_server.url}/services/edge/nodes/{node.pk}/")
    charts = page.locator("[data-testid=monitoring-charts] .monitoring-chart")
    expect(charts).to_have_count(5)
    expect(charts.first.locator(".main-svg").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "edge-node-detail.png"), full_page=True)

    page.goto(f"{asgi_server.url}/services/edge/")
    expect(page.locator("tr:has([data-service=edge-echo])")).to_contain_text("Deploying")
    page.screenshot(path=str(SHOTS / "edge-service-list.png"), full_page=True)

    page.goto(f"{asgi_server.url}/services/edge/{service.pk}/")
    for name in ("start", "stop", "restart"):
        expect(page.locator(f"[data-testid={name}]")).to_be_disabled()
    expect(page.locator("[data-testid=no-lifecycle]")).to_contain_text("not available for services deployed on edge")
    expect(page.locator("[data-testid=edge-service-header]")).to_contain_text("container 8080 → 0.0.0.0:18080")
    page.screenshot(path=str(SHOTS / "edge-service-detail.png"), full_page=True)
    # The status refreshes in place.
    EdgeService.objects.filter(pk=service.pk).update(status=EdgeServiceStatus.RUNNING)
    expect(page.locator("[data-testid=edge-service-status]")).to_contain_text("Running", timeout=12_000)

    # Pools and load balancers are shared tables too (search narrows them in place).
    serving.load_balancer_create(user=owner, workspace=workspace, name="front", node=node, listen_port=18090,
                                 rules=[{"match": "prefix", "path": "/", "service": service.pk}])
    page.goto(f"{asgi_server.url}/services/edge/balancers/")
    expect(page.locator("#load-balancers-results tbody tr")).to_contain_text("Round-robin")
    page.fill("#load-balancers-q", "nothing-like-this")
    expect(page.locator("#load-balancers-results")).to_contain_text("No matches")
    expect(page.locator("#load-balancers-results .form-errors")).to_have_count(0)
    page.fill("#load-balancers-q", "")
    expect(page.locator("#load-balancers-results tbody tr")).to_have_count(1)
    page.screenshot(path=str(SHOTS / "edge-load-balancers.png"), full_page=True)
    page.goto(f"{asgi_server.url}/services/edge/pools/")
    expect(page.locator("#edge-pools-results")).to_contain_text("No edge pools yet")


def test_async_deploy_form_and_agent_upgrade_button(page, asgi_server, login, owner, workspace, echo_uri,
                                                     cpu_flavor):
    from apps.deployment import services as app_services

    login(page, owner, asgi_server.url)
    sync = make_version(owner, workspace, echo_uri, name="echo-edge", deploy_types=("edge",))
    row = app_services.ai_app_create(
        user=owner, workspace=workspace, name="video", source_uri=echo_uri, request_mode="async",
        deploy_types=["edge"], start_params=[{"name": "THRESHOLD", "default": "0.5", "description": "score cut-off"},
                                             {"name": "CAMERA_URL", "required": True}])
    app_services.ai_app_version_import(version_id=row.pk)
    node = running_node(owner, workspace, name="edge-cams")

    page.goto(f"{asgi_server.url}/services/edge/new")
    form = page.locator("[data-testid=edge-service-form]")
    # A synchronous version: no number of streams, no parameter list.
    page.select_option("select[name=model_version]", str(sync.pk))
    expect(form.locator("[data-field=stream_count]")).to_be_hidden()
    expect(page.locator("[data-testid=start-param-list]")).to_be_hidden()
    # The asynchronous one: the field appears, its parameters are listed and pre-filled.
    page.select_option("select[name=model_version]", str(row.pk))
    expect(form.locator("[data-field=stream_count]")).to_be_visible()
    expect(page.locator("[data-testid=start-param-list]")).to_contain_text("THRESHOLD = 0.5 · score cut-off")
    expect(page.locator("[data-testid=start-param-list]")).to_contain_text("CAMERA_URL (required)")
    expect(page.locator("textarea[name=start_params]")).to_have_value("THRESHOLD=0.5\nCAMERA_URL=")
    # More than 10 instances: a warning, not a refusal.
    warning = page.locator("[data-instance-warning]")
    expect(warning).to_be_hidden()
    page.fill("input[name=instance_count]", "11")
    expect(warning).to_be_visible()
    page.fill("input[name=instance_count]", "2")
    expect(warning).to_be_hidden()
    page.fill("input[name=name]", "cams")
    page.select_option("select[name=target]", f"node:{node.pk}")
    page.click("[data-testid=submit]")
    # Errors come back on their fields, and what was typed is kept.
    expect(page.locator("[data-field=stream_count] .field-error")).to_contain_text("number of video streams")
    page.fill("input[name=stream_count]", "4")
    page.click("[data-testid=submit]")
    expect(page.locator("[data-field=start_params] .field-error")).to_contain_text("CAMERA_URL is required")
    expect(page.locator("textarea[name=start_params]")).to_have_value("THRESHOLD=0.5\nCAMERA_URL=")
    expect(form.locator("[data-field=stream_count]")).to_be_visible()
    page.fill("textarea[name=start_params]", "THRESHOLD=0.7\nCAMERA_URL=rtsp://cam/1")
    page.screenshot(path=str(SHOTS / "edge-async-deploy-form.png"), full_page=True)
    page.click("[data-testid=submit]")
    expect(page.locator("[data-testid=edge-stream-count]")).to_have_text("4 per instance")
    expect(page.locator("[data-testid=edge-request-mode]")).to_have_text("Asynchronous")
    service = EdgeService.objects.get(name="cams")
    assert service.start_params == {"THRESHOLD": "0.7", "CAMERA_URL": "rtsp://cam/1"}
    page.goto(f"{asgi_server.url}/services/edge/")
    expect(page.locator("tr:has([data-service=cams])")).to_contain_text("Asynchronous")

    # The node page: no empty accelerator charts, and the agent upgrade button.
    EdgeNode.objects.filter(pk=node.pk).update(agent_version="1.0.0")
    page.goto(f"{asgi_server.url}/services/edge/nodes/{node.pk}/")
    expect(page.locator("[data-testid=no-npu]")).to_contain_text("No NPU on this node")
    expect(page.locator("[data-testid=no-gpu]")).to_contain_text("No GPU on this node")
    page.click("[data-testid=upgrade-agent]")
    expect(page.locator("[data-testid=agent-version]")).to_contain_text(
        f"upgrade to {services.agent_version_current()} requested")
    expect(page.locator("[data-testid=upgrade-agent]")).to_be_disabled()
    assert EdgeNode.objects.get(pk=node.pk).upgrade_requested
    # The agent's heartbeats drive the page: UPGRADING, then the new version.
    node.refresh_from_db()
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1, agent_version="1.0.0",
                                 upgrading=True)
    expect(page.locator("[data-testid=node-status]")).to_contain_text("UPGRADING", timeout=12_000)
    node.refresh_from_db()
    services.edge_node_heartbeat(node=node, cpu_percent=1, memory_percent=1, disk_percent=1,
                                 agent_version=services.agent_version_current())
    expect(page.locator("[data-testid=node-status]")).to_contain_text("RUNNING", timeout=12_000)
    expect(page.locator("[data-testid=agent-version]")).to_have_text(services.agent_version_current(), timeout=12_000)
    page.screenshot(path=str(SHOTS / "edge-node-upgraded.png"), full_page=True)
