"""Online services without a worker: validation, the status machine driven by instance runs,
deploy timeout, auto-stop, gated actions, updates (in place, scale, rolling, rollback), keys."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.urls import reverse
from django.utils import timezone

from apps.deployment import keys, serving, sweep
from apps.deployment.choices import ModelStatus, ServiceStatus
from apps.deployment.models import AiAppVersion, InferenceService, ServiceApiKey, ServiceConfigRecord
from apps.runtime.choices import RunStatus
from apps.runtime.models import Run
from tests.deployment.conftest import attach_instances, make_version, service_events

pytestmark = pytest.mark.django_db
S = ServiceStatus


def rows(*pairs, flavor, pool, **extra):
    return [{"model_version": v, "weight": w, "flavor": flavor, "pool": pool, **extra} for v, w in pairs]


@pytest.fixture
def second_version(owner, workspace, echo_uri, echo_version):
    return make_version(owner, workspace, echo_uri, app=echo_version.app)


@pytest.fixture
def deploy(owner, workspace, cpu_flavor, local_pool):
    def make(*pairs, name="svc", **options):
        return serving.service_create(user=owner, workspace=workspace, name=name,
                                      versions=rows(*pairs, flavor=cpu_flavor, pool=local_pool), **options)

    return make


def test_create_queues_one_long_lived_run_per_instance(deploy, echo_version, cpu_flavor, local_pool, owner, workspace):
    service = serving.service_create(user=owner, workspace=workspace, name="svc", versions=rows(
        (echo_version, 100), flavor=cpu_flavor, pool=local_pool, instance_count=2, env={"ECHO_SLOW_SECONDS": "0"}))
    assert service.status == S.DEPLOYING
    runs = list(Run.objects.filter(service_instance__service=service))
    assert len(runs) == 2
    run = runs[0]
    assert run.command == ["python", "-m", "atelier_modelserver"]
    assert (run.long_lived, run.health_path, run.job_type, run.max_restarts) == (True, "/health", "inference", 3)
    assert run.inputs == [{"name": "package", "uri": echo_version.package_uri}]
    assert run.env["MODEL_NAME"] == "echo" and run.env["MODEL_VERSION"] == "0.0.1"
    assert run.env["ECHO_SLOW_SECONDS"] == "0"
    assert service_events(service) == ["Start to deploy service."]
    assert ServiceConfigRecord.objects.get(service=service).config["versions"][0]["instance_count"] == 2


@pytest.mark.parametrize("options, field, message", [
    ({"auto_stop_hours": 25}, "auto_stop_hours", "Auto-stop is off or a whole number of hours from 1 to 24."),
    ({"deploy_timeout_minutes": 2}, "deploy_timeout_minutes",
     "The deploy timeout is a whole number of minutes from 3 to 120."),
    ({"websocket": True, "traffic_limit": 10}, "traffic_limit",
     "A WebSocket service has no traffic limit; turn one of them off."),
    ({"rules": [{"condition": "#NOPE == 'x'", "version": 0}]}, "rules",
     "Rule 1: unknown variable #NOPE; use #HEADER_<name> or one of #DOMAIN_ID, #DOMAIN_NAME, #PROJECT_ID, "
     "#PROJECT_NAME, #USER_ID, #USER_NAME."),
])
def test_option_rules(deploy, echo_version, options, field, message):
    with pytest.raises(ValidationError) as caught:
        deploy((echo_version, 100), **options)
    assert caught.value.message_dict[field] == [message]
    assert not InferenceService.objects.exists() and not Run.objects.exists()


def test_weights_must_add_up_to_100_and_failed_versions_cannot_deploy(deploy, echo_version, second_version):
    with pytest.raises(ValidationError) as caught:
        deploy((echo_version, 70), (second_version, 20))
    assert caught.value.message_dict["versions"] == ["The traffic weights add up to 90; they must add up to 100."]
    AiAppVersion.objects.filter(pk=second_version.pk).update(status=ModelStatus.BUILD_FAILED)
    with pytest.raises(ValidationError) as caught:
        deploy((echo_version, 50), (second_version, 50))
    assert caught.value.message_dict["versions"] == [
        "Version 2: echo 0.0.2 is build failed; only versions in status Normal can be deployed."]
    with pytest.raises(ValidationError) as caught:
        deploy((echo_version, 50), (echo_version, 50))
    assert caught.value.message_dict["versions"] == ["Version 2: echo 0.0.1 is listed twice."]
    assert not InferenceService.objects.exists() and not Run.objects.exists()


def test_quota_counts_stopped_services(deploy, echo_version, settings):
    settings.ATELIER_DEPLOYMENT_MAX_ONLINE_SERVICES = 1
    service = deploy((echo_version, 100))
    InferenceService.objects.filter(pk=service.pk).update(status=S.STOPPED)
    with pytest.raises(ValidationError) as caught:
        deploy((echo_version, 100), name="second")
    assert caught.value.messages == ["You already have 1 online services, the most allowed; stopped and abnormal "
                                     "services count too, so delete one first."]


def test_ready_instances_make_it_running_and_a_crash_raises_alarm(deploy, echo_version):
    service = deploy((echo_version, 100), auto_stop_hours=2)
    service = attach_instances(service, {echo_version.pk: ["127.0.0.1:9"]})
    assert service.status == S.RUNNING
    assert service.auto_stop_at is not None
    assert service_events(service)[-2:] == ["Service svc started successfully.",
                                            "Auto-stop switched on, service will be stopped in 2 hours."]
    run = Run.objects.get(service_instance__service=service)
    # The engine restarts a crashed run: it is queued again, so the service is not fully ready.
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, ready_at=None, status_reason="Waiting.",
                                         auto_restarts=1)
    assert serving.service_refresh(service) == S.ALARM
    assert service_events(service)[-1].startswith("Service abnormal, unhealthy instances: 1 (queued: Waiting)")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, ready_at=timezone.now())
    assert serving.service_refresh(service) == S.RUNNING
    assert service_events(service)[-1] == "Service recovered: all 1 instances ready."


def test_an_instance_that_gives_up_while_deploying_makes_it_abnormal(deploy, echo_version):
    service = deploy((echo_version, 100))
    run = Run.objects.get(service_instance__service=service)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, status_reason="Exited with exit code 1.",
                                         auto_restarts=3)
    assert serving.service_refresh(service) == S.ABNORMAL
    service.refresh_from_db()
    assert service.status_reason == "Exited with exit code 1"
    assert service_events(service)[-1] == "Service svc started failed. Exited with exit code 1."


def test_deploy_timeout_makes_it_abnormal_and_stops_the_runs(deploy, echo_version):
    service = deploy((echo_version, 100), deploy_timeout_minutes=3)
    InferenceService.objects.filter(pk=service.pk).update(deploying_since=timezone.now() - timedelta(minutes=4))
    assert sweep.deployment_sweep()["timeouts"] == 1
    service.refresh_from_db()
    assert service.status == S.ABNORMAL
    assert service_events(service)[-1].startswith("Deploying timeout, details: instance ")
    assert Run.objects.get(service_instance__service=service).status == RunStatus.STOPPED


def test_auto_stop_fires_at_its_time(deploy, echo_version):
    service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: ["127.0.0.1:9"]})
    InferenceService.objects.filter(pk=service.pk).update(auto_stop_at=timezone.now() - timedelta(seconds=1))
    assert sweep.deployment_sweep()["auto_stopped"] == 1
    service.refresh_from_db()
    assert service.status == S.STOPPING
    assert service_events(service)[-1] == "Service stopped automatically because due time is reached."
    run = Run.objects.get(service_instance__service=service)
    assert run.status == RunStatus.STOPPING
    Run.objects.filter(pk=run.pk).update(status=RunStatus.STOPPED)
    assert serving.service_refresh(service) == S.STOPPED
    assert service_events(service)[-1] == "Service stopped."


def test_actions_are_gated_by_status(deploy, echo_version, owner):
    service = deploy((echo_version, 100))
    with pytest.raises(ValidationError) as caught:
        serving.service_start(user=owner, service=service)
    assert caught.value.messages == ["The service is deploying; only completed, abnormal or stopped services can be "
                                     "started."]
    with pytest.raises(ValidationError) as caught:
        serving.service_restart(user=owner, service=service)
    assert caught.value.messages == ["Only running online services can be restarted; this one is deploying."]
    with pytest.raises(ValidationError) as caught:
        serving.service_update(user=owner, service=service, description="x")
    assert caught.value.messages == ["The service is deploying; modify it once the deployment has finished."]
    serving.service_stop(user=owner, service=service)
    service.refresh_from_db()
    assert service.status == S.STOPPED  # queued runs end at once
    with pytest.raises(ValidationError):
        serving.service_stop(user=owner, service=service)
    serving.service_start(user=owner, service=service)
    service.refresh_from_db()
    assert service.status == S.DEPLOYING and service.instances.count() == 1
    assert service_events(service)[-1] == "Starting service."


def test_outsiders_and_viewers_cannot_act(deploy, echo_version, outsider, owner, workspace):
    from apps.accounts.services import membership_set
    from apps.core.choices import Role
    from tests.conftest import make_user

    service = deploy((echo_version, 100))
    viewer = make_user("vera")
    membership_set(actor=owner, workspace=workspace, user=viewer, role=Role.VIEWER)
    for user in (outsider, viewer):
        with pytest.raises(PermissionDenied):
            serving.service_stop(user=user, service=service)
        with pytest.raises(PermissionDenied):
            serving.service_delete(user=user, service=service)
    service.refresh_from_db()
    assert service.status == S.DEPLOYING


def test_updates_in_place_scale_and_roll(deploy, echo_version, second_version, owner, cpu_flavor, local_pool):
    service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: ["127.0.0.1:9"]})
    # Weights and counts of the same versions: in place / scaled.
    assert serving.service_update(user=owner, service=service, traffic_limit=5) == "updated"
    assert serving.service_update(user=owner, service=service, versions=rows(
        (echo_version, 100), flavor=cpu_flavor, pool=local_pool, instance_count=3)) == "scaled"
    assert service.instances.count() == 3
    assert serving.service_update(user=owner, service=service, versions=rows(
        (echo_version, 100), flavor=cpu_flavor, pool=local_pool, instance_count=1)) == "scaled"
    assert service.instances.filter(draining_since__isnull=False).count() == 2
    # Not-ready instances drain first, so the ready one keeps serving.
    assert service.instances.get(draining_since__isnull=True).run.ready_at is not None

    # A new version while running: a rolling update that waits for the new generation.
    outcome = serving.service_update(user=owner, service=service, versions=rows(
        (echo_version, 50), (second_version, 50), flavor=cpu_flavor, pool=local_pool))
    assert outcome == "rolling"
    service.refresh_from_db()
    assert [v["model_version"] for v in service.pending_config] == [echo_version.pk, second_version.pk]
    assert list(service.versions.values_list("model_version", flat=True)) == [echo_version.pk]
    new = list(service.instances.filter(generation=service.generation))
    assert len(new) == 2
    for index, instance in enumerate(new):
        Run.objects.filter(pk=instance.run_id).update(status=RunStatus.RUNNING, ready_at=timezone.now(),
                                                      endpoint=f"127.0.0.1:{10 + index}")
    serving.service_refresh(service)
    service.refresh_from_db()
    assert service.pending_config == []
    assert sorted(service.versions.values_list("weight", flat=True)) == [50, 50]
    old = service.instances.exclude(generation=service.generation)
    assert old.exists() and not old.filter(draining_since__isnull=True).exists()
    assert any(m.startswith("Update finished: 2 new instance(s) serve") for m in service_events(service))


def test_a_failed_rolling_update_rolls_back(deploy, echo_version, second_version, owner, cpu_flavor, local_pool):
    service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: ["127.0.0.1:9"]})
    serving.service_update(user=owner, service=service, versions=rows((second_version, 100), flavor=cpu_flavor,
                                                                      pool=local_pool))
    service.refresh_from_db()
    new = service.instances.get(generation=service.generation)
    Run.objects.filter(pk=new.run_id).update(status=RunStatus.FAILED, status_reason="Exited with exit code 1.",
                                             auto_restarts=3)
    serving.service_refresh(service)
    service.refresh_from_db()
    assert service.status == S.RUNNING and service.pending_config == []
    assert list(service.versions.values_list("model_version", flat=True)) == [echo_version.pk]
    assert service_events(service)[-2:] == ["Failed to update service, rollback it. Exited with exit code 1.",
                                            "Failed to update service, rollback succeeded."]


def test_api_keys_are_shown_once_hashed_and_revocable(deploy, echo_version, owner):
    service = deploy((echo_version, 100))
    key, secret = keys.service_key_create(user=owner, service=service, name="ci", rate_limit=60)
    assert secret.startswith("ask_") and key.prefix == secret[:12]
    assert key.digest == keys.key_digest(secret) and secret not in key.digest
    keys.service_key_revoke(user=owner, key=key)
    with pytest.raises(ValidationError):
        keys.service_key_revoke(user=owner, key=key)
    assert ServiceApiKey.objects.get(pk=key.pk).revoked_at is not None
    with pytest.raises(ValidationError) as caught:
        keys.service_key_create(user=owner, service=service, name="x", rate_limit=-1)
    assert caught.value.message_dict == {"rate_limit": [
        "The rate limit is a whole number of requests per minute (1 or more), or empty for none."]}


def test_an_instance_failing_its_health_checks_is_replaced(deploy, echo_version):
    import http.server
    import threading

    class Sick(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(500)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sick)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: [
            f"127.0.0.1:{server.server_address[1]}"]})
        sick = service.instances.get()
        start = timezone.now()
        for step in range(2):  # two failures: under the threshold of 3
            assert sweep.deployment_sweep(now=start + timedelta(seconds=11 * step))["replaced"] == 0
        # Checks wait for their period: a sweep one second later probes nothing.
        assert sweep.deployment_sweep(now=start + timedelta(seconds=12))["replaced"] == 0
        assert sweep.deployment_sweep(now=start + timedelta(seconds=22))["replaced"] == 1
    finally:
        server.shutdown()
        server.server_close()
    sick.refresh_from_db()
    service.refresh_from_db()
    assert sick.draining_since is not None and service.instances.count() == 2
    assert service.status == S.ALARM
    assert any(m.startswith(f"Instance #{sick.pk} (echo 0.0.1) failed its health check 3 times in a row (HTTP 500)")
               for m in service_events(service))


def test_queued_instances_make_it_wait_until_a_worker_takes_them(deploy, echo_version):
    service = deploy((echo_version, 100))
    run = Run.objects.get(service_instance__service=service)
    Run.objects.filter(pk=run.pk).update(status_reason="No online worker serves pool local.")
    assert sweep.deployment_sweep(now=service.deploying_since + timedelta(seconds=20))["waiting"] == 0
    assert sweep.deployment_sweep(now=service.deploying_since + timedelta(seconds=31))["waiting"] == 1
    service.refresh_from_db()
    assert (service.status, service.status_reason) == (S.WAITING, "No online worker serves pool local.")
    assert service_events(service)[-2:] == [
        "Lack of resources, transform state to waiting.",
        "svc echo 0.0.1 Schedule failed due to insufficient resources. Retry later. 0 nodes are available: No online "
        "worker serves pool local."]
    Run.objects.filter(pk=run.pk).update(status=RunStatus.STARTING)
    assert serving.service_refresh(service) == S.DEPLOYING
    assert service_events(service)[-1] == "Resources are available; deploying."


def test_stop_waits_when_a_health_check_is_configured(deploy, echo_version, owner, settings):
    settings.ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS = 120
    AiAppVersion.objects.filter(pk=echo_version.pk).update(health={
        "check_method": "HTTP", "url": "/health", "period_seconds": 5, "failure_threshold": 3})
    service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: ["127.0.0.1:9"]})
    serving.service_stop(user=owner, service=service)
    service.refresh_from_db()
    run = Run.objects.get(service_instance__service=service)
    assert service.status == S.STOPPING and run.status == RunStatus.RUNNING  # still answering meanwhile
    assert service_events(service)[-2:] == ["Stopping service.",
                                            "A health check is configured, so the instances stop in 2 minutes."]
    assert abs((service.stop_due_at - timezone.now()).total_seconds() - 120) < 5
    sweep.deployment_sweep()
    assert Run.objects.get(pk=run.pk).status == RunStatus.RUNNING  # not yet
    InferenceService.objects.filter(pk=service.pk).update(stop_due_at=timezone.now() - timedelta(seconds=1))
    sweep.deployment_sweep()
    assert Run.objects.get(pk=run.pk).status == RunStatus.STOPPING
    service.refresh_from_db()
    assert service.stop_due_at is None
    Run.objects.filter(pk=run.pk).update(status=RunStatus.STOPPED)
    assert serving.service_refresh(service) == S.STOPPED


def test_stop_is_immediate_without_a_health_check_or_with_no_delay(deploy, echo_version, owner, settings):
    settings.ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS = 120
    service = attach_instances(deploy((echo_version, 100)), {echo_version.pk: ["127.0.0.1:9"]})
    serving.service_stop(user=owner, service=service)
    assert Run.objects.get(service_instance__service=service).status == RunStatus.STOPPING
    settings.ATELIER_DEPLOYMENT_STOP_DELAY_SECONDS = 0
    AiAppVersion.objects.filter(pk=echo_version.pk).update(health={"check_method": "HTTP", "url": "/health"})
    other = attach_instances(deploy((echo_version, 100), name="other"), {echo_version.pk: ["127.0.0.1:9"]})
    serving.service_stop(user=owner, service=other)
    assert Run.objects.get(service_instance__service=other).status == RunStatus.STOPPING


def _needs_build(version, env_hash="f" * 16):
    AiAppVersion.objects.filter(pk=version.pk).update(env_hash=env_hash)
    version.refresh_from_db()
    return version


def test_a_missing_environment_is_built_by_the_instances_and_reported_on_the_service(deploy, echo_version, settings):
    version = _needs_build(echo_version)
    service = deploy((version, 100))
    assert service_events(service) == ["Start to deploy service.", "Start to build image."]
    (settings.ATELIER_DEPLOYMENT_ENV_ROOT / version.env_hash).mkdir(parents=True)
    (settings.ATELIER_DEPLOYMENT_ENV_ROOT / version.env_hash / ".complete").write_text("{}")
    service = attach_instances(service, {version.pk: ["127.0.0.1:9"]})
    assert service.status == S.RUNNING
    assert service_events(service)[2:4] == ["Image built successfully.", "Service svc started successfully."]
    assert service.image_builds == {}
    # Restarting finds the environment in the cache: no build, and no event (§4.3 has none for it).
    serving.service_restart(user=service.created_by, service=service)
    assert service_events(service).count("Start to build image.") == 1


def test_a_failed_build_is_reported_with_its_log_and_a_link(deploy, echo_version):
    import io

    from apps.core.paths import parse
    from apps.core.storage import get_storage

    version = _needs_build(echo_version)
    service = deploy((version, 100))
    run = Run.objects.get(service_instance__service=service)
    log = ["[modelserver] Preparing the runtime environment for numpy==not-a-version",
           "ERROR: Could not find a version that satisfies the requirement numpy==not-a-version",
           "[modelserver] Model load failed: building the runtime environment failed: pip exited with 1"]
    get_storage().save(parse(run.log_uri), io.BytesIO(("\n".join(log) + "\n").encode()))
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, status_reason="Exited with exit code 3.",
                                         auto_restarts=3)
    assert serving.service_refresh(service) == S.ABNORMAL
    failed, abnormal = service_events(service)[-2:]
    assert failed.startswith(f"Failed to build image for model (echo {version.version}), docker build log:\n")
    assert "Could not find a version that satisfies the requirement numpy==not-a-version" in failed
    assert failed.endswith(f"\nFull building log: {reverse('runtime:run_log', args=[run.pk])}.")
    assert abnormal.startswith("Service svc started failed. Model load failed: building the runtime environment")
    service.refresh_from_db()
    assert service.image_builds == {}
    serving.service_refresh(service)  # reported once
    assert sum(m.startswith("Failed to build image") for m in service_events(service)) == 1


def test_an_instance_failing_without_its_environment_reports_a_plain_build_failure(deploy, echo_version):
    service = deploy((_needs_build(echo_version), 100))
    run = Run.objects.get(service_instance__service=service)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.FAILED, status_reason="Lost.", auto_restarts=3)
    serving.service_refresh(service)
    assert service_events(service)[-2:] == ["Failed to build image.", "Service svc started failed. Lost."]
