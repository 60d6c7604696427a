"""Models and Services pages: lists, forms with inline errors, detail tabs, the test page's call,
lifecycle buttons, API keys and alarm rules; other workspaces answer 404."""
from __future__ import annotations

import json

import pytest
from django.test import Client
from django.urls import reverse

from apps.deployment.choices import ServiceStatus
from apps.deployment.models import AiApp, AlarmRule, InferenceService, ServiceApiKey
from apps.deployment import serving
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances
from tests.deployment.packages import fixture_package, png

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


@pytest.fixture
def service(owner, workspace, echo_version, cpu_flavor, local_pool):
    return service_create(user=owner, workspace=workspace, name="svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])


def test_sidebar_lists_models_and_services(client_for, owner):
    page = client_for(owner).get(reverse("core:overview"))
    assert b'data-section="models"' in page.content and b'data-section="services"' in page.content


def test_model_list_and_detail(client_for, owner, echo_version, django_assert_max_num_queries):
    client = client_for(owner)
    with django_assert_max_num_queries(16):
        page = client.get(reverse("deployment:model_list"))
    assert page.status_code == 200
    text = page.content.decode()
    assert "echo" in text and "0.0.1" in text and "Normal" in text
    detail = client.get(reverse("deployment:model_detail", args=[echo_version.app_id])).content.decode()
    assert 'data-version="0.0.1"' in detail and "Deploy" in detail
    services_page = client.get(reverse("deployment:service_list")).content.decode()
    assert (f'href="{reverse("deployment:edge_service_create")}" data-testid="deploy-edge"') in services_page
    # Publishing to AI Hub is shown but disabled until that section exists, with the reason as a tooltip.
    assert ('title="Publishing to AI Hub becomes available with the AI Hub section; it is not part of this '
            'release." data-testid="publish-hub"><button class="btn btn-sm" type="button" disabled>') in detail
    for tab in ("info", "accuracy", "parameters", "dependencies", "events", "constraints", "services"):
        page = client.get(reverse("deployment:version_detail", args=[echo_version.pk]) + f"?tab={tab}")
        assert page.status_code == 200, tab
    accuracy = client.get(reverse("deployment:version_detail", args=[echo_version.pk]) + "?tab=accuracy")
    assert "0.9123456789012345" in accuracy.content.decode()


def test_create_form_shows_package_errors_inline(client_for, owner, models_bucket, echo_uri):
    client = client_for(owner)
    assert client.get(reverse("deployment:model_create")).status_code == 200
    response = client.post(reverse("deployment:model_create"), {
        "name": "echo", "source_type": "storage", "source_uri": "storage://models/missing", "deploy_types": ["online"],
        "protocol": "http", "port": 8080, "api_method": "POST", "api_content_type": "application/json",
        "request_mode": "sync"})
    assert response.status_code == 400
    assert "storage://models/missing does not exist." in response.content.decode()
    response = client.post(reverse("deployment:model_create"), {
        "name": "echo", "source_type": "storage", "source_uri": echo_uri, "deploy_types": ["online", "batch"],
        "protocol": "http", "port": 8080, "api_method": "POST", "api_content_type": "application/json",
        "request_mode": "sync", "docs": "Guide | https://example.test/guide"})
    assert response.status_code == 302
    version = AiApp.objects.get(name="echo").versions.get()
    assert response["Location"] == reverse("deployment:version_detail", args=[version.pk])
    assert version.deploy_types == ["online", "batch"]
    assert version.docs == [{"name": "Guide", "url": "https://example.test/guide"}]


def test_new_version_form_is_prefilled(client_for, owner, echo_version):
    page = client_for(owner).get(reverse("deployment:version_create", args=[echo_version.app_id]))
    text = page.content.decode()
    assert echo_version.source_uri in text and 'value="echo"' in text


def test_deploy_form_refuses_bad_weights_inline_and_deploys(client_for, owner, echo_version, cpu_flavor, local_pool):
    client = client_for(owner)
    page = client.get(reverse("deployment:service_create") + f"?version={echo_version.pk}")
    options = json.loads(page.content.decode().split('id="deploy-options" type="application/json">')[1]
                         .split("</script>")[0])
    assert options["versions"] == [{"id": echo_version.pk, "label": "echo 0.0.1", "app": "echo", "version": "0.0.1"}]
    row = {"model_version": echo_version.pk, "weight": 90, "pool": local_pool.pk, "flavor": cpu_flavor.pk,
           "instance_count": 1, "env": "A=1"}
    form = {"name": "svc", "auto_stop": "1", "deploy_timeout_minutes": 20, "max_unavailable": 1,
            "versions_json": json.dumps([row]), "rules_json": "[]"}
    response = client.post(reverse("deployment:service_create"), form)
    assert response.status_code == 400
    assert "The traffic weights add up to 90; they must add up to 100." in response.content.decode()
    assert not InferenceService.objects.exists()
    row["weight"] = 100
    response = client.post(reverse("deployment:service_create"), {**form, "versions_json": json.dumps([row])})
    service = InferenceService.objects.get()
    assert response.status_code == 302 and service.versions.get().env == {"A": "1"}
    assert service.auto_stop_hours == 1


def test_the_websocket_flag_is_explained_and_fixed_after_deployment(client_for, owner, service, echo_version):
    client = client_for(owner)
    create = client.get(reverse("deployment:service_create") + f"?version={echo_version.pk}").content.decode()
    assert "Any AI application may use it (Atelier's model server speaks WebSocket" in create
    assert "cannot be changed after deployment" in create
    url = reverse("deployment:service_edit", args=[service.pk])
    edit = client.get(url).content.decode()
    before, after = edit.split('name="websocket"', 1)
    assert "disabled" in before.rsplit("<input", 1)[1] + after.split(">", 1)[0]
    # A forged post cannot switch it on: the disabled field keeps the deployed value.
    sv = service.versions.get()
    row = {"model_version": echo_version.pk, "weight": 100, "pool": sv.pool_id, "flavor": sv.flavor_id,
           "instance_count": 1, "env": ""}
    serving.service_stop(user=owner, service=service)
    response = client.post(url, {"auto_stop": "1", "deploy_timeout_minutes": 20, "max_unavailable": 1,
                                 "websocket": "on", "versions_json": json.dumps([row]), "rules_json": "[]"})
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.websocket is False


def test_websocket_services_show_no_call_counts_on_monitoring(client_for, owner, workspace, service, echo_version,
                                                             cpu_flavor, local_pool):
    client = client_for(owner)
    plain = client.get(reverse("deployment:service_detail", args=[service.pk]) + "?tab=monitoring").content.decode()
    assert "data-monitoring-totals" in plain and "no call statistics" not in plain
    ws = service_create(user=owner, workspace=workspace, name="ws", websocket=True, versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    page = client.get(reverse("deployment:service_detail", args=[ws.pk]) + "?tab=monitoring").content.decode()
    assert "WebSocket services have no call statistics." in page
    assert "data-monitoring-totals" not in page
    charts = client.get(reverse("deployment:service_monitoring", args=[ws.pk]) + "?range=3h").json()["charts"]
    # Latency comes from the same call statistics, so only resource usage remains.
    assert [c["key"] for c in charts] == ["cpu_usage", "mem_usage"]


def test_service_detail_tabs_and_call_guide(client_for, owner, service):
    client = client_for(owner)
    for tab in ("guide", "predict", "config", "monitoring", "events", "instances", "keys", "alarms"):
        page = client.get(reverse("deployment:service_detail", args=[service.pk]) + f"?tab={tab}")
        assert page.status_code == 200, tab
    guide = client.get(reverse("deployment:service_detail", args=[service.pk])).content.decode()
    assert f"http://testserver/infer/{service.pk}" in guide
    inputs = guide.split('data-testid="input-params"')[1].split("</table>")[0]
    assert [cell.split("<")[0] for cell in inputs.split('<td class="mono">')[1:]] == [
        "data", "data.req_data", "data.req_data[].x", "data.req_data[].y"]
    monitoring = client.get(reverse("deployment:service_monitoring", args=[service.pk]) + "?range=3h").json()
    assert [c["key"] for c in monitoring["charts"]] == ["calls", "latency", "cpu_usage", "mem_usage"]
    assert len(monitoring["charts"][0]["figure"]["data"]) == 0


def test_test_page_calls_an_instance_and_checks_limits(client_for, owner, service, echo_version, model_servers,
                                                       tmp_path, settings):
    server = model_servers(fixture_package("echo", tmp_path / "srv"))
    attach_instances(service, {echo_version.pk: [server.endpoint]})
    client = client_for(owner)
    url = reverse("deployment:service_predict", args=[service.pk])
    answer = client.post(url, {"body": json.dumps({"data": {"req_data": [{"x": 4, "y": 5}]}})}).json()
    assert answer["status"] == 200 and answer["version"] == "echo 0.0.1"
    assert answer["body"]["data"]["resp_data"][0]["sum"] == 9
    refused = client.post(url, {"body": json.dumps({"data": {"req_data": [{"x": 4}]}})}).json()
    assert refused["status"] == 400 and refused["body"]["error_msg"] == "record 0 needs x and y"
    bad = client.post(url, {"body": "{not json"})
    assert bad.status_code == 400 and bad.json()["body"]["error_msg"].startswith("The request body is not valid JSON")
    from django.core.files.uploadedfile import SimpleUploadedFile

    wrong_type = client.post(url, {"file": SimpleUploadedFile("notes.txt", b"hi")})
    assert wrong_type.status_code == 400
    settings.ATELIER_GATEWAY_CONSOLE_MAX_BODY_BYTES = 100
    big = client.post(url, {"file": SimpleUploadedFile("big.png", png(size=(64, 64)))})
    assert big.status_code == 413 and big.json()["body"]["error_code"] == "APIG.0201"


def test_lifecycle_buttons_keys_and_alarm_rules(client_for, owner, service):
    client = client_for(owner)
    detail = reverse("deployment:service_detail", args=[service.pk])
    client.post(reverse("deployment:service_action", args=[service.pk, "stop"]))
    service.refresh_from_db()
    assert service.status == ServiceStatus.STOPPED
    response = client.post(reverse("deployment:service_action", args=[service.pk, "restart"]), follow=True)
    assert "Only running online services can be restarted; this one is stopped." in response.content.decode()

    client.post(reverse("deployment:key_create", args=[service.pk]), {"name": "ci", "rate_limit": "30"})
    page = client.get(detail + "?tab=keys").content.decode()
    key = ServiceApiKey.objects.get()
    secret_shown = page.split('data-testid="new-key"')[1].split("<code class=\"mono\">")[1].split("</code>")[0]
    assert secret_shown.startswith("ask_") and secret_shown.startswith(key.prefix)
    again = client.get(detail + "?tab=keys").content.decode()
    assert secret_shown not in again  # shown once
    client.post(reverse("deployment:key_revoke", args=[key.pk]))
    assert ServiceApiKey.objects.get().revoked_at is not None

    client.post(reverse("deployment:alarm_create", args=[service.pk]), {
        "name": "errors", "model_version": "", "metric": "failed_called_times", "comparison": ">", "threshold": "5",
        "period_minutes": "5"})
    assert AlarmRule.objects.get().threshold == 5.0


def test_other_workspaces_get_404_and_viewers_cannot_write(client_for, outsider, owner, workspace, service,
                                                           echo_version):
    from apps.accounts.services import membership_set
    from apps.core.choices import Role
    from tests.conftest import make_user

    client = client_for(outsider)
    for url in (reverse("deployment:service_detail", args=[service.pk]),
                reverse("deployment:model_detail", args=[echo_version.app_id]),
                reverse("deployment:version_detail", args=[echo_version.pk])):
        assert client.get(url).status_code == 404
    assert client.post(reverse("deployment:service_action", args=[service.pk, "stop"])).status_code == 404
    viewer = make_user("vera")
    membership_set(actor=owner, workspace=workspace, user=viewer, role=Role.VIEWER)
    viewer_client = client_for(viewer)
    viewer_client.post(reverse("accounts:workspace_switch", args=[workspace.pk]))
    assert viewer_client.get(reverse("deployment:service_detail", args=[service.pk])).status_code == 200
    assert viewer_client.get(reverse("deployment:model_create")).status_code == 403
    assert viewer_client.post(reverse("deployment:service_predict", args=[service.pk]), {"body": "{}"}).status_code == 403
    service.refresh_from_db()
    assert service.status == ServiceStatus.DEPLOYING


def test_service_lists(client_for, owner, service, django_assert_max_num_queries):
    client = client_for(owner)
    with django_assert_max_num_queries(16):
        page = client.get(reverse("deployment:service_list"))
    assert page.status_code == 200 and "svc" in page.content.decode()
    assert "echo 0.0.1" in page.content.decode()
    batch = client.get(reverse("deployment:service_list") + "?kind=batch")
    assert batch.status_code == 200 and "svc" not in batch.content.decode()


def test_description_is_editable_from_the_header(client_for, owner, outsider, service):
    client = client_for(owner)
    detail = client.get(reverse("deployment:service_detail", args=[service.pk])).content.decode()
    assert 'data-testid="edit-description"' in detail
    client.post(reverse("deployment:service_description", args=[service.pk]), {"description": "  Fraud scoring  "})
    service.refresh_from_db()
    assert service.description == "Fraud scoring"
    assert client_for(outsider).post(reverse("deployment:service_description", args=[service.pk]),
                                     {"description": "x"}).status_code == 404
    service.refresh_from_db()
    assert service.description == "Fraud scoring"


def test_bulk_delete_confirms_then_deletes_only_this_workspaces_services(client_for, owner, outsider, workspace,
                                                                         service, echo_version, cpu_flavor,
                                                                         local_pool):
    second = service_create(user=owner, workspace=workspace, name="svc2", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    keep = service_create(user=owner, workspace=workspace, name="keep", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    client = client_for(owner)
    listing = client.get(reverse("deployment:service_list")).content.decode()
    assert f'<input type="checkbox" name="ids" value="{service.pk}" form="service-bulk"' in listing
    url = reverse("deployment:service_bulk_delete") + f"?ids={service.pk}&ids={second.pk}&ids=not-a-uuid"
    confirm = client.get(url).content.decode()
    assert "Delete 2 services" in confirm and 'data-confirm-name="delete 2 services"' in confirm
    wrong = client.post(url, {"confirm_name": "delete 2"})
    assert wrong.status_code == 400 and InferenceService.objects.count() == 3
    # Another workspace's member selects nothing of ours.
    stranger = client_for(outsider).get(url, follow=True)
    assert "Select at least one service to delete." in stranger.content.decode()
    done = client.post(url, {"confirm_name": "delete 2 services"}, follow=True)
    assert "2 services deleted." in done.content.decode()
    assert list(InferenceService.objects.values_list("name", flat=True)) == [keep.name]
