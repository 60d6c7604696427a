"""Deployment REST API: create and list AI applications and versions, deploy and act on services,
keys, alarm rules, metrics and direct endpoints; the error format; other workspaces get 404."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.deployment.models import AiApp, CallStat, InferenceService, ServiceApiKey
from tests.deployment.conftest import attach_instances

pytestmark = pytest.mark.django_db

BASE = "/api/v1/deployment"


@pytest.fixture
def deployed(api, echo_version, cpu_flavor, local_pool):
    response = api.post(f"{BASE}/services/", {
        "name": "svc", "versions": [{"model_version": echo_version.pk, "weight": 100, "pool": local_pool.pk,
                                     "flavor": cpu_flavor.pk}]}, format="json")
    assert response.status_code == 201, response.json()
    return InferenceService.objects.get(pk=response.json()["id"])


def test_create_and_list_ai_applications(api, echo_uri, django_assert_max_num_queries):
    response = api.post(f"{BASE}/models/", {"name": "echo", "source_uri": echo_uri, "deploy_types": ["online", "batch"]},
                        format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["status"], body["app"]["name"], sorted(body["deploy_types"])) == (
        "0.0.1", "importing", "echo", ["batch", "online"])
    again = api.post(f"{BASE}/models/{body['app']['id']}/versions/", {"source_uri": echo_uri}, format="json")
    assert again.status_code == 201 and again.json()["version"] == "0.0.2"
    with django_assert_max_num_queries(12):
        listing = api.get(f"{BASE}/models/").json()
    assert [(a["name"], a["version_count"], a["latest_version"]) for a in listing["results"]] == [("echo", 2, "0.0.2")]
    versions = api.get(f"{BASE}/models/{body['app']['id']}/versions/").json()["results"]
    assert [v["version"] for v in versions] == ["0.0.2", "0.0.1"]
    events = api.get(f"{BASE}/versions/{body['id']}/events/").json()["results"]
    assert events[0]["message"] == "Start model import."


def test_refusals_use_the_error_format(api, echo_version, cpu_flavor, local_pool, models_bucket):
    response = api.post(f"{BASE}/models/", {"name": "x", "source_uri": "storage://models/none"}, format="json")
    assert response.status_code == 400
    assert response.json() == {"error": {"code": "invalid", "message": "source_uri: storage://models/none does not exist.",
                                         "fields": {"source_uri": ["storage://models/none does not exist."]}}}
    response = api.post(f"{BASE}/services/", {"name": "svc", "versions": [
        {"model_version": echo_version.pk, "weight": 60, "pool": local_pool.pk, "flavor": cpu_flavor.pk}]},
        format="json")
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "versions: The traffic weights add up to 60; they must add up to 100."
    assert not InferenceService.objects.exists()


def test_service_lifecycle_over_the_api(api, deployed, echo_version):
    detail = api.get(f"{BASE}/services/{deployed.pk}/").json()
    assert detail["status"] == "deploying" and detail["access_address"] == f"http://testserver/infer/{deployed.pk}"
    refused = api.post(f"{BASE}/services/{deployed.pk}/start/")
    assert refused.status_code == 400
    assert refused.json()["error"]["message"] == ("The service is deploying; only completed, abnormal or stopped "
                                                  "services can be started.")
    stopped = api.post(f"{BASE}/services/{deployed.pk}/stop/").json()
    assert stopped["status"] == "stopped"
    updated = api.patch(f"{BASE}/services/{deployed.pk}/", {"description": "nightly", "traffic_limit": 20},
                        format="json").json()
    assert (updated["outcome"], updated["description"], updated["traffic_limit"]) == ("updated", "nightly", 20)
    # The WebSocket flag is fixed: repeating it is fine, changing it is refused with the field named.
    assert api.patch(f"{BASE}/services/{deployed.pk}/", {"websocket": False}, format="json").status_code == 200
    flipped = api.patch(f"{BASE}/services/{deployed.pk}/", {"websocket": True}, format="json")
    assert flipped.status_code == 400
    assert "The WebSocket flag is fixed once the service is deployed" in flipped.content.decode()
    assert "websocket" in flipped.content.decode()
    assert api.get(f"{BASE}/services/{deployed.pk}/").json()["websocket"] is False
    assert api.post(f"{BASE}/services/{deployed.pk}/restart/").status_code == 400
    listing = api.get(f"{BASE}/services/?kind=online").json()
    assert [s["name"] for s in listing["results"]] == ["svc"]
    assert api.get(f"{BASE}/services/?kind=edge").status_code == 400
    assert api.delete(f"{BASE}/services/{deployed.pk}/").status_code == 204
    assert not InferenceService.objects.exists()


def test_keys_are_shown_once_and_revoked(api, deployed):
    created = api.post(f"{BASE}/services/{deployed.pk}/keys/", {"name": "ci", "rate_limit": 100}, format="json")
    assert created.status_code == 201
    secret = created.json()["key"]
    assert secret.startswith("ask_")
    listed = api.get(f"{BASE}/services/{deployed.pk}/keys/").json()["results"]
    assert listed[0]["prefix"] == secret[:12] and "key" not in listed[0]
    assert api.delete(f"{BASE}/keys/{listed[0]['id']}/").status_code == 204
    assert ServiceApiKey.objects.get().revoked_at is not None


def test_alarm_rules_metrics_and_endpoints(api, deployed, echo_version):
    rule = api.post(f"{BASE}/services/{deployed.pk}/alarm-rules/", {
        "name": "failures", "metric": "failed_called_times", "comparison": ">", "threshold": 2,
        "period_minutes": 5, "model_version": echo_version.pk}, format="json")
    assert rule.status_code == 201 and rule.json()["state"] == "ok"
    bad = api.post(f"{BASE}/services/{deployed.pk}/alarm-rules/", {
        "name": "x", "metric": "failed_called_times", "comparison": ">", "threshold": 1, "period_minutes": 7},
        format="json")
    assert bad.json()["error"]["fields"] == {"period_minutes": ["The period is one of 1, 5, 15, 60 minutes."]}

    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=1)
    CallStat.objects.create(service=deployed, model_version=echo_version, version_label="echo 0.0.1", minute=minute,
                            total=10, success=9, failed=1, latency_sum_ms=50.0, latency_max_ms=9.0,
                            latency_buckets=[0, 0, 10] + [0] * 13)
    metrics = api.get(f"{BASE}/services/{deployed.pk}/metrics/?range=1h").json()
    assert metrics["totals"] == {"total": 10, "success": 9, "failed": 1, "latency_ms": 5.0}
    assert len(metrics["minutes"]) == 60 and metrics["versions"]["echo 0.0.1"]["total"][-2] == 10
    assert metrics["versions"]["echo 0.0.1"]["p95_ms"][-2] == 5.0
    assert api.get(f"{BASE}/services/{deployed.pk}/metrics/?range=2d").status_code == 400

    attach_instances(deployed, {echo_version.pk: ["10.0.0.7:31997"]})
    endpoints = api.get(f"{BASE}/services/{deployed.pk}/predict/endpoints/?type=host_endpoints").json()
    assert endpoints["endpoints"] == [{"scheme": "http", "ip": "10.0.0.7", "port": 31997,
                                       "model_version": "echo 0.0.1"}]
    modelarts = f"/v1/{deployed.workspace_id}/services/{deployed.pk}/predict/endpoints?type=host_endpoints"
    assert api.get(modelarts).json() == endpoints
    assert api.get(f"/v1/{deployed.workspace_id + 1000}/services/{deployed.pk}/predict/endpoints"
                   "?type=host_endpoints").status_code == 404


def test_other_workspaces_get_404(outsider_api, deployed, echo_version):
    for url in (f"{BASE}/services/{deployed.pk}/", f"{BASE}/models/{echo_version.app_id}/",
                f"{BASE}/versions/{echo_version.pk}/", f"{BASE}/services/{deployed.pk}/keys/"):
        assert outsider_api.get(url).status_code == 404
    assert outsider_api.post(f"{BASE}/services/{deployed.pk}/stop/").status_code == 404
    assert outsider_api.get(f"/v1/{deployed.workspace_id}/services/{deployed.pk}/predict/endpoints"
                            "?type=host_endpoints").status_code == 404
    assert outsider_api.delete(f"{BASE}/models/{echo_version.app_id}/").status_code == 404
    assert AiApp.objects.exists() and InferenceService.objects.get().status == "deploying"


def test_metric_query_needs_both_dimensions(api, outsider_api, deployed, echo_version):
    from datetime import timedelta

    from django.utils import timezone

    from apps.runtime.models import RunSample

    minute = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=2)
    CallStat.objects.create(service=deployed, model_version=echo_version, version_label="echo 0.0.1", minute=minute,
                            total=12, success=10, failed=2)
    run = deployed.instances.get().run
    RunSample.objects.create(run=run, at=minute + timedelta(seconds=10), cpu_percent=30, memory_percent=5)
    RunSample.objects.create(run=run, at=minute + timedelta(seconds=40), cpu_percent=50, memory_percent=7)
    dims = f"dim.0=service_id,{deployed.pk}&dim.1=model_id,{echo_version.pk}"
    calls = api.get(f"{BASE}/metrics/?metric_name=failed_called_times&{dims}").json()
    assert calls["unit"] == "count/min" and calls["period"] == 60
    assert calls["datapoints"] == [{"timestamp": int(minute.timestamp() * 1000), "average": 2.0}]
    cpu = api.get(f"{BASE}/metrics/?metric_name=cpu_usage&{dims}").json()
    assert cpu["datapoints"] == [{"timestamp": int(minute.timestamp() * 1000), "average": 40.0}]
    assert api.get(f"{BASE}/metrics/?metric_name=npu_util&{dims}").json()["datapoints"] == []
    missing = api.get(f"{BASE}/metrics/?metric_name=cpu_usage&dim.0=service_id,{deployed.pk}")
    assert missing.status_code == 400
    assert missing.json()["error"]["fields"] == {"dim": [
        "Give both dimensions: dim.0=service_id,<service id> and dim.1=model_id,<AI application version id>."]}
    assert api.get(f"{BASE}/metrics/?metric_name=disk&{dims}").status_code == 400
    assert api.get(f"{BASE}/metrics/?metric_name=cpu_usage&{dims}&from=5&to=1").status_code == 400
    assert api.get(f"{BASE}/metrics/?metric_name=cpu_usage&dim.0=service_id,{deployed.pk}"
                   f"&dim.1=model_id,{echo_version.pk + 99}").status_code == 404
    assert outsider_api.get(f"{BASE}/metrics/?metric_name=cpu_usage&{dims}").status_code == 404
