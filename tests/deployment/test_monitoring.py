"""Call statistics, alarm rules (raise, clear, notify) and event retention."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.models import Event
from apps.core.services import event_add
from apps.deployment import monitoring
from apps.deployment.choices import AlarmState
from apps.deployment.models import Alarm, AlarmRule, CallStat
from apps.deployment.serving import service_create
from tests.deployment.conftest import attach_instances, service_events

pytestmark = pytest.mark.django_db


@pytest.fixture
def running(owner, workspace, echo_version, cpu_flavor, local_pool):
    service = service_create(user=owner, workspace=workspace, name="svc", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}])
    return attach_instances(service, {echo_version.pk: ["127.0.0.1:9"]})


def test_flushes_add_up_per_minute(running, echo_version):
    minute = int(timezone.now().timestamp() // 60)
    buckets = [0] * (len(monitoring.LATENCY_BUCKETS_MS) + 1)
    first = {(str(running.pk), echo_version.pk, "echo 0.0.1", minute): [3, 2, 1, 30.0, 20.0, buckets[:]]}
    second = {(str(running.pk), echo_version.pk, "echo 0.0.1", minute): [2, 2, 0, 8.0, 5.0, buckets[:]]}
    assert monitoring.stats_flush(first) == 1 and monitoring.stats_flush(second) == 1
    row = CallStat.objects.get()
    assert (row.total, row.success, row.failed, row.latency_sum_ms, row.latency_max_ms) == (5, 4, 1, 38.0, 20.0)
    assert monitoring.percentile_from_buckets([0, 0, 5, 0, 5] + [0] * 11, 50) == 5.0
    assert monitoring.percentile_from_buckets([0] * 16, 95) is None


def test_alarm_is_raised_notified_and_cleared(running, owner, echo_version, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    rule = monitoring.alarm_rule_create(user=owner, service=running, name="failures", metric="failed_called_times",
                                        comparison=">", threshold=2, period_minutes=5, model_version=echo_version,
                                        notify=True, notify_target="ops@example.test")
    now = timezone.now()
    minute = now.replace(second=0, microsecond=0)
    for ago, failed in ((1, 20), (2, 5)):
        CallStat.objects.create(service=running, model_version=echo_version, version_label="echo 0.0.1",
                                minute=minute - timedelta(minutes=ago), total=50, success=50 - failed, failed=failed)
    with pytest.raises(ValidationError) as caught:
        monitoring.alarm_rule_create(user=owner, service=running, name="x", metric="latency_ms", comparison=">",
                                     threshold=1, period_minutes=3)
    assert caught.value.message_dict == {"period_minutes": ["The period is one of 1, 5, 15, 60 minutes."]}
    assert monitoring.alarms_evaluate(now=now) == {"evaluated": 1, "raised": 1, "cleared": 0}
    rule.refresh_from_db()
    assert (rule.state, rule.last_value) == (AlarmState.ALARM, 5.0)
    message = 'Alarm "failures": Failed calls of echo 0.0.1 is 5 (> 2 over 5 min).'
    assert Alarm.objects.get().message == message
    assert service_events(running)[-1] == message
    # Evaluating again while still above: no second alarm.
    assert monitoring.alarms_evaluate(now=now)["raised"] == 0
    CallStat.objects.all().delete()
    assert monitoring.alarms_evaluate(now=now) == {"evaluated": 1, "raised": 0, "cleared": 1}
    assert Alarm.objects.get().cleared_at is not None
    assert service_events(running)[-1] == 'Alarm "failures" cleared: Failed calls of echo 0.0.1 is 0.'


def test_notification_mail_is_sent_after_commit(running, owner, settings, django_capture_on_commit_callbacks):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    monitoring.alarm_rule_create(user=owner, service=running, name="busy", metric="total_called_times",
                                 comparison=">=", threshold=1, period_minutes=1, notify=True,
                                 notify_target="a@example.test, b@example.test")
    now = timezone.now()
    CallStat.objects.create(service=running, version_label="echo 0.0.1", total=3, success=3,
                            minute=now.replace(second=0, microsecond=0) - timedelta(minutes=1))
    with django_capture_on_commit_callbacks(execute=True):
        monitoring.alarms_evaluate(now=now)
    assert [m.to for m in mail.outbox] == [["a@example.test", "b@example.test"]]
    assert mail.outbox[0].subject == '[Atelier] Alarm "busy": Total calls is 3 (>= 1 over 1 min).'


def test_stopped_services_are_not_evaluated(running, owner):
    monitoring.alarm_rule_create(user=owner, service=running, name="r", metric="total_called_times", comparison="<",
                                 threshold=1, period_minutes=1)
    running.status = "stopped"
    running.save(update_fields=["status"])
    assert monitoring.alarms_evaluate() == {"evaluated": 0, "raised": 0, "cleared": 0}
    assert AlarmRule.objects.get().last_evaluated_at is None


def test_events_are_kept_three_months_for_models_and_one_for_services(running, echo_version):
    old_service = event_add(obj=running, message="old service event")
    recent_service = event_add(obj=running, message="recent service event")
    old_model = event_add(obj=echo_version, message="old model event")
    mid_model = event_add(obj=echo_version, message="two-month-old model event")
    now = timezone.now()
    Event.objects.filter(pk=old_service.pk).update(created_at=now - timedelta(days=31))
    Event.objects.filter(pk=recent_service.pk).update(created_at=now - timedelta(days=29))
    Event.objects.filter(pk=old_model.pk).update(created_at=now - timedelta(days=91))
    Event.objects.filter(pk=mid_model.pk).update(created_at=now - timedelta(days=60))
    assert monitoring.events_cleanup(now=now) == {"aiappversion": 1, "inferenceservice": 1}
    remaining = set(Event.objects.values_list("message", flat=True))
    assert {"recent service event", "two-month-old model event"} <= remaining
    assert not {"old service event", "old model event"} & remaining


def test_instance_usage_comes_from_engine_samples_or_model_server_metrics(running, owner, client, echo_version,
                                                                         cpu_flavor, local_pool):
    from apps.runtime.models import Metric, RunSample

    now = timezone.now()
    run = running.instances.get().run
    RunSample.objects.create(run=run, at=now - timedelta(minutes=2), cpu_percent=40, memory_percent=10)
    RunSample.objects.create(run=run, at=now - timedelta(minutes=1), cpu_percent=60, memory_percent=12.5)
    Metric.objects.create(run=run, name="cpu_usage", step=1, value=99, created_at=now)  # ignored: the engine samples this run
    series = monitoring.resource_series(running)
    label = f"#{running.instances.get().pk} echo 0.0.1"
    assert [v for _t, v in series["cpu_usage"][label]] == [40.0, 60.0]
    assert [v for _t, v in series["mem_usage"][label]] == [10.0, 12.5]
    assert series["gpu_util"] == {}  # a CPU run has no GPU values
    assert monitoring.instance_usage_latest([run.pk]) == {run.pk: {"cpu_usage": 60.0, "mem_usage": 12.5}}
    rule = monitoring.alarm_rule_create(user=owner, service=running, name="cpu", metric="cpu_usage", comparison=">",
                                        threshold=45, period_minutes=5)
    assert monitoring.metric_value(rule, now=now) == 50.0
    client.force_login(owner)
    page = client.get(f"/services/{running.pk}/?tab=instances").content.decode()
    assert '<td class="num" data-testid="instance-cpu">60.0%</td>' in page and "12.5%" in page
    # An instance the engine did not sample falls back to its model server's metric lines.
    other = attach_instances(service_create(user=owner, workspace=running.workspace, name="other", versions=[
        {"model_version": echo_version, "weight": 100, "flavor": cpu_flavor, "pool": local_pool}]),
        {echo_version.pk: ["127.0.0.1:9"]})
    other_run = other.instances.get().run
    Metric.objects.create(run=other_run, name="mem_usage", step=1, value=33, created_at=now)
    assert monitoring.instance_usage_latest([other_run.pk]) == {other_run.pk: {"mem_usage": 33.0}}


def test_monitoring_tab_shows_available_and_used_resources(running, owner, client):
    from apps.runtime.models import RunSample

    run = running.instances.get().run
    RunSample.objects.create(run=run, at=timezone.now(), cpu_percent=50, memory_percent=25)
    rows = monitoring.resource_allocation(running)
    assert rows == [{"label": "echo 0.0.1", "instances": 1, "flavor": "cpu-1c-1g", "cpu": (1, 0.5),
                     "memory": (1.0, 0.25), "gpu": None}]
    client.force_login(owner)
    page = client.get(f"/services/{running.pk}/?tab=monitoring").content.decode()
    assert 'data-testid="allocation"' in page and "0.5 / 1" in page and "0.25 / 1.0" in page
