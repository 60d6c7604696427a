"""Models and Services in a real browser: the deploy form's version editor, the test page (JSON and
an image with its detection boxes drawn), the monitoring charts, and the AI application form's
container-image source (image, protocol and port, the model folder's path picker, inline errors).

Each test leaves screenshots under $ATELIER_SCREENSHOTS (default: the system temp dir).
"""
from __future__ import annotations

import os
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from apps.deployment.models import CallStat, InferenceService
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances, make_version, upload_package
from tests.deployment.packages import fixture_package, png

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SHOTS = Path(os.environ.get("ATELIER_SCREENSHOTS", tempfile.gettempdir()))


@pytest.fixture
def signed_in(page, asgi_server, owner, login):
    login(page, owner, asgi_server.url)
    return asgi_server.url


def test_deploy_form_checks_weights_and_deploys_two_versions(page, signed_in, owner, workspace, echo_uri, echo_version,
                                                            cpu_flavor, local_pool):
    second = make_version(owner, workspace, echo_uri, app=echo_version.app)
    page.goto(f"{signed_in}/models/{echo_version.app_id}/")
    page.screenshot(path=str(SHOTS / "deployment-model-detail.png"), full_page=True)
    page.click("tr[data-version='0.0.1'] [data-testid=deploy-online]")
    expect(page.locator("[data-version-row]")).to_have_count(1)
    page.fill("input[name=name]", "gray")
    page.click("[data-testid=add-version]")
    rows = page.locator("[data-version-row]")
    expect(rows).to_have_count(2)
    rows.nth(1).locator("[data-key=model_version]").select_option(str(second.pk))
    rows.nth(0).locator("[data-key=weight]").fill("70")
    rows.nth(1).locator("[data-key=weight]").fill("20")
    expect(page.locator("[data-weight-total]")).to_have_text("90")
    page.click("[data-testid=service-submit]")
    expect(page.locator(".form-errors")).to_contain_text("The traffic weights add up to 90; they must add up to 100.")
    # The editor comes back with what was sent.
    expect(page.locator("[data-version-row]")).to_have_count(2)
    page.locator("[data-version-row]").nth(1).locator("[data-key=weight]").fill("30")
    expect(page.locator("[data-weight-total]")).to_have_text("100")
    expect(page.locator("[data-field=websocket] .help")).to_contain_text("Atelier's model server speaks WebSocket")
    page.screenshot(path=str(SHOTS / "deployment-deploy-form.png"), full_page=True)
    page.click("[data-testid=service-submit]")
    expect(page.locator("h1")).to_contain_text("gray")
    service = InferenceService.objects.get(name="gray")
    assert sorted(service.versions.values_list("weight", flat=True)) == [30, 70]
    # The flag is fixed once deployed: the modify form shows it disabled.
    page.goto(f"{signed_in}/services/{service.pk}/edit")
    expect(page.locator("input[name=websocket]")).to_be_disabled()
    page.goto(f"{signed_in}/services/{service.pk}/")
    page.screenshot(path=str(SHOTS / "deployment-service-detail.png"), full_page=True)
    page.goto(f"{signed_in}/services/")
    expect(page.locator("[data-testid=service-link]")).to_have_text("gray")
    page.screenshot(path=str(SHOTS / "deployment-service-list.png"), full_page=True)
    page.goto(f"{signed_in}/models/")
    expect(page.locator("[data-testid=app-link]")).to_have_text("echo")
    page.screenshot(path=str(SHOTS / "deployment-model-list.png"), full_page=True)


def test_test_page_json_and_image_with_boxes(page, signed_in, owner, workspace, models_bucket, tmp_path, cpu_flavor,
                                             local_pool, model_servers, echo_version):
    shapes = make_version(owner, workspace, upload_package(fixture_package("shapes", tmp_path), "models", "shapes"),
                          name="shapes")
    server = model_servers(fixture_package("shapes", tmp_path / "srv"), name="shapes")
    detector = attach_instances(service_create(user=owner, workspace=workspace, name="detector", versions=[
        {"model_version": shapes, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}]),
        {shapes.pk: [server.endpoint]})
    image = tmp_path / "box.png"
    image.write_bytes(png(255, (200, 150), box=(40, 30, 120, 110)))
    page.goto(f"{signed_in}/services/{detector.pk}/?tab=predict")
    page.set_input_files("[data-predict-file]", str(image))
    page.click("[data-testid=predict]")
    expect(page.locator("[data-predict-result]")).to_contain_text('"detection_boxes"')
    expect(page.locator("[data-predict-canvas]")).to_have_attribute("data-boxes", "1")
    # The box is drawn in the first colour at its edge (x = 40, y between 30 and 110).
    pixel = page.evaluate("""() => {
        const c = document.querySelector('[data-predict-canvas]');
        return Array.from(c.getContext('2d').getImageData(40, 70, 1, 1).data);
    }""")
    assert pixel[:3] == [225, 29, 72]
    page.screenshot(path=str(SHOTS / "deployment-test-page-image.png"), full_page=True)

    echo_server = model_servers(fixture_package("echo", tmp_path / "echo-srv"))
    echo = attach_instances(service_create(user=owner, workspace=workspace, name="echo-svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}]),
        {echo_version.pk: [echo_server.endpoint]})
    page.goto(f"{signed_in}/services/{echo.pk}/?tab=predict")
    page.fill("[data-predict-body]", '{"data": {"req_data": [{"x": 20, "y": 22}]}}')
    page.click("[data-testid=predict]")
    expect(page.locator("[data-predict-result]")).to_contain_text('"sum": 42')
    page.fill("[data-predict-body]", '{"data": {"req_data": [{"x": 20}]}}')
    page.click("[data-testid=predict]")
    expect(page.locator("[data-predict-result]")).to_contain_text("record 0 needs x and y")
    expect(page.locator("[data-predict-meta]")).to_contain_text("HTTP 400")
    page.screenshot(path=str(SHOTS / "deployment-test-page-json.png"), full_page=True)


def test_monitoring_charts_draw_the_calls(page, signed_in, owner, workspace, echo_version, second_version_factory,
                                          cpu_flavor, local_pool):
    second = second_version_factory()
    service = service_create(user=owner, workspace=workspace, name="watched", versions=[
        {"model_version": echo_version, "weight": 80, "flavor": cpu_flavor, "pool": local_pool},
        {"model_version": second, "weight": 20, "flavor": cpu_flavor, "pool": local_pool}])
    now = timezone.now().replace(second=0, microsecond=0)
    for minutes_ago, total, failed in ((3, 40, 0), (2, 55, 3), (1, 61, 1)):
        for version, share in ((echo_version, 0.8), (second, 0.2)):
            calls = int(total * share)
            CallStat.objects.create(service=service, model_version=version, version_label=version.label,
                                    minute=now - timedelta(minutes=minutes_ago), total=calls, success=calls - failed,
                                    failed=failed, latency_sum_ms=calls * 12.5, latency_max_ms=30,
                                    latency_buckets=[0, 0, 0, 0, calls] + [0] * 11)
    page.goto(f"{signed_in}/services/{service.pk}/?tab=monitoring")
    charts = page.locator("[data-monitoring-charts] .monitoring-chart")
    expect(charts).to_have_count(4)
    expect(page.locator("[data-chart=calls] .main-svg").first).to_be_visible()
    legend = page.locator("[data-chart=calls] .legendtext")
    expect(legend.filter(has_text="echo 0.0.1 · success")).to_have_count(1)
    expect(legend.filter(has_text="echo 0.0.2 · failed")).to_have_count(1)
    expect(page.locator("[data-total=total]")).to_have_text(str(sum(int(t * 0.8) + int(t * 0.2) for t in (40, 55, 61))))
    page.select_option("[data-monitoring-range]", "3h")
    expect(page.locator("[data-chart=latency] .main-svg").first).to_be_visible()
    page.screenshot(path=str(SHOTS / "deployment-monitoring.png"), full_page=True)


@pytest.fixture
def second_version_factory(owner, workspace, echo_uri, echo_version):
    return lambda: make_version(owner, workspace, echo_uri, app=echo_version.app)


def test_the_version_page_follows_the_import_live(page, signed_in, owner, workspace, echo_uri):
    from apps.deployment.services import ai_app_version_import

    version = make_version(owner, workspace, echo_uri, imported=False)
    page.goto(f"{signed_in}/models/versions/{version.pk}/")
    expect(page.locator("[data-testid=version-status] [data-status]")).to_have_attribute("data-status", "importing")
    expect(page.locator("#version-status")).to_have_attribute("data-live-state", "open")
    ai_app_version_import(version_id=version.pk)  # what the worker does; the page is told over WebSocket
    expect(page.locator("[data-testid=version-status] [data-status]")).to_have_attribute("data-status", "normal")
    page.screenshot(path=str(SHOTS / "deployment-version-detail.png"), full_page=True)


def test_bulk_delete_and_description_edit(page, signed_in, owner, workspace, echo_version, cpu_flavor, local_pool):
    rows = [{"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}]
    first = service_create(user=owner, workspace=workspace, name="alpha", versions=rows)
    service_create(user=owner, workspace=workspace, name="beta", versions=rows)
    service_create(user=owner, workspace=workspace, name="gamma", versions=rows)
    page.goto(f"{signed_in}/services/{first.pk}/")
    page.click("[data-testid=edit-description]")
    page.fill("#service-description-input", "Scores fraud")
    page.screenshot(path=str(SHOTS / "deployment-service-description.png"))
    page.click("[data-testid=save-description]")
    expect(page.locator("[data-testid=service-description]")).to_contain_text("Scores fraud")
    page.goto(f"{signed_in}/services/")
    page.locator("tr", has_text="alpha").locator("[data-testid=select-service]").check()
    page.locator("tr", has_text="gamma").locator("[data-testid=select-service]").check()
    page.click("[data-testid=bulk-delete]")
    expect(page.locator("[data-testid=bulk-delete-list] li")).to_have_count(2)
    submit = page.locator("[data-confirm-submit]")
    expect(submit).to_be_disabled()
    page.fill("input[name=confirm_name]", "delete 2 services")
    expect(submit).to_be_enabled()
    page.screenshot(path=str(SHOTS / "deployment-bulk-delete.png"))
    submit.click()
    expect(page.locator("body")).to_contain_text("2 services deleted.")
    assert list(InferenceService.objects.values_list("name", flat=True)) == ["beta"]


def test_modify_form_warns_when_a_change_restarts_the_service(page, signed_in, owner, workspace, echo_version,
                                                              cpu_flavor, local_pool):
    service = attach_instances(service_create(user=owner, workspace=workspace, name="live", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool,
         "env": {"MODE": "fast"}}]), {echo_version.pk: ["127.0.0.1:9"]})
    page.goto(f"{signed_in}/services/{service.pk}/edit")
    warning = page.locator("[data-testid=restart-warning]")
    row = page.locator("[data-version-row]").first
    expect(row.locator("[data-key=env]")).to_have_value("MODE=fast")
    expect(warning).to_be_hidden()
    row.locator("[data-key=instance_count]").fill("2")  # scaling changes nothing running
    expect(warning).to_be_hidden()
    row.locator("[data-key=env]").fill("MODE=slow")
    expect(warning).to_be_visible()
    page.screenshot(path=str(SHOTS / "deployment-restart-warning.png"), full_page=True)
    row.locator("[data-key=env]").fill(" MODE = fast ")
    expect(warning).to_be_hidden()


def test_ai_app_form_with_a_container_image(page, signed_in, owner, workspace, models_bucket, tmp_path):
    from apps.deployment.models import AiAppVersion

    folder = tmp_path / "boxed"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "greeting.txt").write_text("hello\n")
    upload_package(folder, "models", "boxed")
    (tmp_path / "bare" / "data").mkdir(parents=True)
    (tmp_path / "bare" / "data" / "x.txt").write_text("no model folder here\n")
    upload_package(tmp_path / "bare", "models", "bare")

    page.goto(f"{signed_in}/models/new")
    form = page.locator("[data-testid=model-form]")
    image_field = form.locator("[data-field=image]")
    expect(image_field).to_be_hidden()  # storage is the default source
    form.locator("input[name=source_type][value=image]").check()
    # The image's fields, and the model folder (optional for an image) with its path picker.
    expect(image_field).to_be_visible()
    expect(form.locator("[data-field=training_job]")).to_be_hidden()
    expect(form.locator("[data-field=source_uri]")).to_be_visible()
    expect(form.locator("select[name=protocol]")).to_have_value("http")
    expect(form.locator("input[name=port]")).to_have_value("8080")
    form.locator("input[name=name]").fill("boxed")

    # A port out of range and a bad image reference: each is shown at its field, nothing is created.
    form.locator("input[name=image]").fill("Registry.Local/Team Server:latest")
    form.locator("input[name=port]").fill("70000")
    page.click("[data-testid=model-submit]")
    expect(form.locator("[data-field=port] .field-error")).to_have_text(
        "Ensure this value is less than or equal to 65535.")
    expect(form.locator("input[name=source_type][value=image]")).to_be_checked()
    expect(form.locator("input[name=image]")).to_have_value("Registry.Local/Team Server:latest")
    form.locator("input[name=port]").fill("8443")
    form.locator("select[name=protocol]").select_option("https")
    page.click("[data-testid=model-submit]")
    expect(form.locator("[data-field=image] .field-error")).to_have_text(
        "Give an image reference such as registry.local/team/server:1.0.")
    expect(form.locator("[data-field=port] .field-error")).to_have_count(0)
    expect(form.locator("select[name=protocol]")).to_have_value("https")
    page.screenshot(path=str(SHOTS / "deployment-model-form-image-errors.png"), full_page=True)

    # A model folder without model/ is refused at its field.
    form.locator("input[name=image]").fill("registry.local/team/server:1.0")
    form.locator("input[name=source_uri]").fill("storage://models/bare")
    page.click("[data-testid=model-submit]")
    expect(form.locator("[data-field=source_uri] .field-error")).to_contain_text(
        "The folder has no model/ folder with files in it")

    # The path picker chooses the folder that holds model/ (it opens at the typed folder: start
    # from the buckets).
    form.locator("input[name=source_uri]").fill("")
    form.locator("[data-field=source_uri] [data-path-picker-open]").click()
    dialog = page.locator("dialog#path-picker-dialog")
    expect(dialog).to_be_visible()
    dialog.locator(".picker-entry[data-name=models]").click()
    dialog.locator(".picker-entry[data-name=boxed]").click()
    expect(dialog.locator("[data-picker-selected]")).to_have_text("storage://models/boxed")
    dialog.locator("[data-picker-choose]").click()
    expect(dialog).to_be_hidden()
    expect(form.locator("input[name=source_uri]")).to_have_value("storage://models/boxed")
    page.screenshot(path=str(SHOTS / "deployment-model-form-image.png"), full_page=True)
    page.click("[data-testid=model-submit]")
    expect(page.locator("h1")).to_contain_text("boxed")
    version = AiAppVersion.objects.get(app__name="boxed")
    assert (version.source_type, version.image, version.protocol, version.port, version.source_uri) == (
        "image", "registry.local/team/server:1.0", "https", 8443, "storage://models/boxed")
