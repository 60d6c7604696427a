"""The CloudShell tab of a running online service in a real browser: pick the instance, type into
its model server's shell (a real worker runs the instance)."""
from __future__ import annotations

import re

import pytest
from django.urls import reverse

from apps.deployment.choices import ServiceStatus
from apps.deployment.serving import service_create, service_stop
from apps.runtime.models import Run
from tests.deployment.conftest import deploy_worker, echo_uri, echo_version, models_bucket  # noqa: F401
from tests.deployment.test_worker import status_of
from tests.harness import ARTIFACTS

pytestmark = [pytest.mark.worker, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_cloudshell_opens_in_the_chosen_instance(deploy_worker, asgi_server, owner, workspace, echo_version,  # noqa: F811
                                                 cpu_flavor, local_pool, page, login, settings, tmp_path):
    settings.ATELIER_DEPLOYMENT_ENV_ROOT = tmp_path / "envs"
    deploy_worker(env={"ATELIER_DEPLOYMENT_ENV_ROOT": str(tmp_path / "envs")})
    service = service_create(user=owner, workspace=workspace, name="echo-svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    service = status_of(service, ServiceStatus.RUNNING, timeout=90)
    instance = service.instances.get()
    run = Run.objects.get(pk=instance.run_id)

    login(page, owner, asgi_server.url)
    page.goto(asgi_server.url + reverse("deployment:service_detail", args=[service.pk]))
    page.get_by_role("link", name="CloudShell", exact=True).click()
    options = page.get_by_test_id("shell-node").locator("option").all_inner_texts()
    assert options == [f"{echo_version.label} · instance #{instance.pk}"]
    page.get_by_test_id("shell-state").filter(has_text="Connected as").wait_for()
    rows = page.locator(".xterm-rows")
    rows.filter(has_text=f"run-{run.pk}").wait_for()  # the prompt shows the run directory: bash is ready
    page.locator(".xterm").click()
    page.keyboard.type('echo "port=$PORT rank=$RANK"')
    page.keyboard.press("Enter")
    rows.filter(has_text=re.compile(r"port=\d+ rank=0")).wait_for()
    assert f"port={run.port} rank=0" in rows.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "shell-service-cloudshell.png"), full_page=True)
    service_stop(user=owner, service=service)
    page.get_by_test_id("shell-notice").filter(has_text="The run ended.").wait_for()
