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
