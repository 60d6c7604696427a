"""The job page's log, resource and fault-recovery pieces without a worker: per-node and zip downloads,
the full log, expiring share links, resource series, attempt history, the restart wait limit, and
the pipeline-event line format."""
from __future__ import annotations

import io
import zipfile
from datetime import timedelta

import pytest
from django.utils import timezone

from apps.core.paths import parse
from apps.core.services import events_for
from apps.core.storage import get_storage
from apps.runtime.choices import RunStatus
from apps.runtime.models import Run, RunAttempt, RunSample
from apps.runtime.runevents import EventLineError, event_line_parse
from apps.runtime.services import run_submit, run_transition
from apps.training.choices import TrainingStatus
from apps.training.models import TrainingJob
from apps.training.recovery import training_restart_waits_expire
from apps.training.services import training_job_create
from tests.runtime.factories import make_worker

from .conftest import put_tree

pytestmark = pytest.mark.django_db


def _job_with_nodes(owner, workspace, pool, flavor, *, nodes=2, name="logjob", logs=None):
    """A running job whose `nodes` runs exist (no worker behind them) with the given log text per rank."""
    for index in range(nodes):
        make_worker(hostname=f"w{index}@test", pools=[pool])
    put_tree(f"storage://train-data/{name}", {"train.py": "print('hi')\n"})
    job = training_job_create(user=owner, workspace=workspace, name=name, pool=pool, flavor=flavor,
                              experiment="none", code_dir=f"storage://train-data/{name}", boot_file="train.py",
                              node_count=nodes)
    runs = run_submit(user=owner, workspace=workspace, name=f"training {name}", command=["true"], flavor=flavor,
                      pool=pool, node_count=nodes, owner_type="training.trainingjob", owner_id=str(job.pk))
    TrainingJob.objects.filter(pk=job.pk).update(run_group=runs[0].group, status=TrainingStatus.RUNNING)
    for run in runs:
        text = (logs or {}).get(run.node_rank, f"[atelier] node {run.node_rank} starts\nuser line {run.node_rank}\n")
        get_storage().save(parse(run.log_uri), io.BytesIO(text.encode()))
    job.refresh_from_db()
    return job, runs


def test_node_log_download_full_view_and_zip_of_all_nodes(client, owner, workspace, bucket, local_pool, cpu_flavor):
    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor)
    client.force_login(owner)

    download = client.get(f"/training/jobs/{job.pk}/nodes/1/log")
    assert download.status_code == 200
    assert download["Content-Disposition"] == 'attachment; filename="logjob-worker-1.log"'
    assert b"".join(download.streaming_content) == b"[atelier] node 1 starts\nuser line 1\n"

    full = client.get(f"/training/jobs/{job.pk}/nodes/0/log", {"view": "full"})
    assert full["Content-Disposition"] == 'inline; filename="logjob-worker-0.log"'
    assert full["Content-Type"] == "text/plain; charset=utf-8"

    archive = client.get(f"/training/jobs/{job.pk}/logs.zip")
    assert archive.status_code == 200
    assert archive["Content-Disposition"] == 'attachment; filename="logjob-logs.zip"'
    with zipfile.ZipFile(io.BytesIO(b"".join(archive.streaming_content))) as zf:
        assert zf.namelist() == ["logjob-worker-0.log", "logjob-worker-1.log"]
        assert zf.read("logjob-worker-0.log") == b"[atelier] node 0 starts\nuser line 0\n"

    assert client.get(f"/training/jobs/{job.pk}/nodes/7/log").status_code == 404


def test_outsider_gets_404_for_logs_share_and_resources(client, owner, outsider, workspace, bucket, local_pool,
                                                        cpu_flavor):
    job, _ = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, nodes=1)
    client.force_login(outsider)
    for url in (f"/training/jobs/{job.pk}/nodes/0/log", f"/training/jobs/{job.pk}/logs.zip",
                f"/training/jobs/{job.pk}/resources.json"):
        assert client.get(url).status_code == 404, url
    assert client.post(f"/training/jobs/{job.pk}/nodes/0/log/share").status_code == 404
    from apps.core.models import AuditEntry

    assert not AuditEntry.objects.filter(action="trainjob:share_log").exists()


def test_share_link_opens_one_log_without_login_and_expires(client, owner, workspace, bucket, local_pool,
                                                            cpu_flavor, settings):
    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor)
    client.force_login(owner)
    assert client.get(f"/training/jobs/{job.pk}/nodes/1/log/share").status_code == 405  # POST only
    made = client.post(f"/training/jobs/{job.pk}/nodes/1/log/share").json()
    assert made["node"] == "worker-1" and made["expires_in_seconds"] == 3600
    from apps.core.models import AuditEntry

    entry = AuditEntry.objects.get(action="trainjob:share_log")
    assert (entry.actor, entry.object_id, entry.detail) == (owner, str(job.pk), {"node": "worker-1",
                                                                               "expires_in_seconds": 3600})
    path = made["url"].removeprefix("http://testserver")
    assert path.startswith("/training/shared-logs/")

    client.logout()
    shared = client.get(path)
    assert shared.status_code == 200
    assert b"".join(shared.streaming_content) == b"[atelier] node 1 starts\nuser line 1\n"
    assert shared["Referrer-Policy"] == "no-referrer"
    # The token names that one log: a changed token is refused, and it opens no other page.
    assert client.get(path[:-2] + ("AA" if not path.endswith("AA") else "BB")).status_code == 404
    assert client.get(f"/training/jobs/{job.pk}/nodes/0/log").status_code == 302  # to the login page

    settings.ATELIER_TRAINING_LOG_SHARE_SECONDS = 0  # an hour later, as far as the signature check is concerned
    import time

    time.sleep(1.1)
    assert client.get(path).status_code == 404


def test_resources_json_and_tab_show_node_series(client, owner, workspace, bucket, local_pool, cpu_flavor):
    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor)
    now = timezone.now()
    RunSample.objects.create(run=runs[0], at=now - timedelta(seconds=20), cpu_percent=50.0, memory_percent=10.0,
                             memory_mb=100)
    RunSample.objects.create(run=runs[0], at=now - timedelta(seconds=10), cpu_percent=75.0, memory_percent=12.0,
                             memory_mb=120)
    RunSample.objects.create(run=runs[1], at=now - timedelta(seconds=10), cpu_percent=5.0, memory_percent=1.0,
                             memory_mb=10, gpu_percent=40.0, gpu_memory_percent=20.0)
    RunSample.objects.create(run=runs[1], at=now - timedelta(days=4), cpu_percent=99.0, memory_percent=99.0)
    client.force_login(owner)

    data = client.get(f"/training/jobs/{job.pk}/resources.json").json()
    assert data["status"] == "running"
    first, second = data["nodes"]
    assert (first["label"], first["count"], second["count"]) == ("worker-0", 2, 1)  # the 4-day-old point is out
    traces = {t["name"]: t["y"] for t in first["figure"]["data"]}
    assert traces == {"cpuUsage": [50.0, 75.0], "memUsage": [10.0, 12.0]}
    assert [t["name"] for t in second["figure"]["data"]] == ["cpuUsage", "memUsage", "gpuUtil", "gpuMemUsage"]

    page = client.get(f"/training/jobs/{job.pk}/", {"tab": "resources"}).content.decode()
    assert f'data-resources="/training/jobs/{job.pk}/resources.json"' in page
    assert 'data-refresh-seconds="10"' in page and "(2 samples)" in page


def test_fault_recovery_tab_lists_attempts_and_appears_only_after_a_restart(client, owner, workspace, bucket,
                                                                            local_pool, cpu_flavor):
    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, nodes=1)
    client.force_login(owner)
    page = client.get(f"/training/jobs/{job.pk}/").content.decode()
    assert "Fault recovery" not in page

    run = runs[0]
    worker = make_worker(hostname="gpu-a@test", pools=[local_pool])
    start = timezone.now() - timedelta(minutes=5)
    Run.objects.filter(pk=run.pk).update(status=RunStatus.RUNNING, worker=worker, host="10.0.0.5", started_at=start)
    run.refresh_from_db()
    run_transition(run, RunStatus.LOST, reason="Lost: gpu-a@test stopped sending heartbeats (40 s ago).")
    Run.objects.filter(pk=run.pk).update(status=RunStatus.QUEUED, attempt=2, worker=None, started_at=None,
                                         finished_at=None, auto_restarts=1)
    TrainingJob.objects.filter(pk=job.pk).update(restart_count=1, auto_restart=1)
    assert RunAttempt.objects.get(run=run, attempt=1).worker_name == "gpu-a@test"

    page = client.get(f"/training/jobs/{job.pk}/", {"tab": "recovery"}).content.decode()
    assert "Fault recovery" in page and 'data-testid="fault-recovery"' in page
    assert '<tr data-attempt="1"><td class="num">1</td><td>First run</td>' in page
    assert ('<tr data-attempt="2"><td class="num">2</td><td>Node-task reschedule</td><td>Worker lost: '
            'gpu-a@test stopped sending heartbeats (40 s ago).</td><td>queued (current)</td>') in page
    assert "worker-0: gpu-a@test" in page


def test_a_restart_waiting_more_than_the_limit_fails_the_job_with_an_event(owner, workspace, bucket, local_pool,
                                                                           cpu_flavor):
    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, nodes=2)
    TrainingJob.objects.filter(pk=job.pk).update(status=TrainingStatus.PENDING, auto_restart=1)
    long_ago = timezone.now() - timedelta(minutes=31)
    Run.objects.filter(group=runs[0].group).update(attempt=2, auto_restarts=1, queued_at=long_ago)
    fresh = Run.objects.filter(group=runs[0].group)
    # A restart queued 29 minutes ago is left alone.
    assert training_restart_waits_expire(now=timezone.now() - timedelta(minutes=2)) == 0
    assert set(fresh.values_list("status", flat=True)) == {RunStatus.QUEUED}

    assert training_restart_waits_expire() == 1
    job.refresh_from_db()
    assert job.status == TrainingStatus.FAILED
    assert job.failure["key"] == "restart_wait"
    assert job.status_reason.endswith("The restarted job waited more than 30 min for resources.")
    messages = [e.message for e in events_for(job)]
    assert "训练作业排队失败 / Training job failed: the restart waited in the queue for more than 30 min." in messages
    assert set(fresh.values_list("status", flat=True)) == {RunStatus.STOPPED}
    assert training_restart_waits_expire() == 0  # idempotent


def test_restarted_groups_are_sent_before_older_first_attempts(owner, workspace, local_pool, cpu_flavor):
    from apps.runtime.scheduling import runs_dispatch

    make_worker(hostname="only@test", pools=[local_pool], slots=1)
    older = run_submit(user=owner, workspace=workspace, name="older", command=["true"], flavor=cpu_flavor,
                       pool=local_pool)[0]
    restarted = run_submit(user=owner, workspace=workspace, name="restarted", command=["true"], flavor=cpu_flavor,
                           pool=local_pool)[0]
    Run.objects.filter(pk=restarted.pk).update(attempt=2)
    sent = []
    from unittest import mock

    with mock.patch("apps.runtime.tasks.run_execute.apply_async", side_effect=lambda args, queue: sent.append(args[0])):
        runs_dispatch([older.pk, restarted.pk])
    assert sent == [restarted.pk, older.pk]


@pytest.mark.parametrize("line, expected", [
    ('ATELIER_EVENT {"message": "Pre-check done", "seconds": 2.6}', "[耗时: 3 秒] Pre-check done (took 3 s)"),
    ('ATELIER_EVENT {"message": "Installing Python dependencies, file: requirements.txt"}',
     "Installing Python dependencies, file: requirements.txt"),
    ('ATELIER_EVENT {"message": "Training process ended", "exit_code": 1, "seconds": 0}',
     "[耗时: 0 秒] Training process ended, exit code 1 (took 0 s)"),
])
def test_event_lines_become_event_text(line, expected):
    assert event_line_parse(line).text == expected


@pytest.mark.parametrize("line, error", [
    ("ATELIER_EVENT nope", "not valid JSON"),
    ('ATELIER_EVENT {"message": ""}', '"message" must be non-empty text'),
    ('ATELIER_EVENT {"message": "x", "level": "fatal"}', '"level" must be one of info, warning, error'),
    ('ATELIER_EVENT {"message": "x", "seconds": -1}', '"seconds" must be a number >= 0'),
    ('ATELIER_EVENT {"message": "x", "runtime_clock": "stop"}', '"runtime_clock" must be "hold" or "start"'),
])
def test_malformed_event_lines_say_what_is_wrong(line, error):
    with pytest.raises(EventLineError, match=error):
        event_line_parse(line)
    assert event_line_parse("plain output") is None


def test_the_sweep_prunes_resource_samples_past_the_retention(owner, workspace, bucket, local_pool, cpu_flavor,
                                                              settings):
    from apps.runtime.scheduling import runtime_sweep

    job, runs = _job_with_nodes(owner, workspace, local_pool, cpu_flavor, nodes=1)
    now = timezone.now()
    old = RunSample.objects.create(run=runs[0], at=now - timedelta(hours=73), cpu_percent=1, memory_percent=1)
    kept = RunSample.objects.create(run=runs[0], at=now - timedelta(hours=71), cpu_percent=1, memory_percent=1)
    assert settings.ATELIER_RUNTIME_SAMPLE_RETENTION_HOURS == 72  # three days, as the spec asks at least
    runtime_sweep()
    assert list(RunSample.objects.values_list("pk", flat=True)) == [kept.pk]
    assert not RunSample.objects.filter(pk=old.pk).exists()


def test_the_client_helper_prints_lines_the_supervisor_accepts(capsys):
    import importlib.util
    from pathlib import Path

    import apps.runtime

    path = Path(apps.runtime.__file__).parent / "client" / "atelier" / "__init__.py"
    spec = importlib.util.spec_from_file_location("atelier_client_under_test", path)
    client = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(client)

    client.log_event("Dataset cached", seconds=12.5)
    client.log_event("Shard 3 skipped", level="warning")
    first, second = capsys.readouterr().out.splitlines()
    assert event_line_parse(first).text == "[耗时: 13 秒] Dataset cached (took 13 s)"
    assert (event_line_parse(second).text, event_line_parse(second).level) == ("Shard 3 skipped", "warning")
    with pytest.raises(ValueError, match="level must be info, warning or error"):
        client.log_event("x", level="fatal")


def test_a_failed_pre_check_is_diagnosed_as_the_node_and_retryable():
    from apps.training.diagnosis import diagnose

    lines = ["[atelier][INFO][detect] code: 0, message: ok, item: dns",
             '[atelier][ERROR][detect] code: 13, message: the disk space of the path "/" is 10, which is less than 20, '
             'item: disk-size root']
    result = diagnose(exit_code=13, lines=lines, first_seq=5)
    assert (result.key, result.retryable, result.cause) == ("precheck", True, "The node failed the environment "
                                                                              "pre-check.")
    assert result.lines == [(6, lines[1])]
    # The same exit code from user code is not a pre-check failure.
    assert diagnose(exit_code=13, lines=["Traceback", "ValueError: bad"]).key == "exit_code"
