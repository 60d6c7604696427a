"""Run-engine services without a worker: the state machine, claims and GPU leases, the sweep,
auto-restart rules, owner callbacks, placement reasons, bootstrap, exit codes and metric lines."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from apps.runtime.callbacks import owner_callback_register, owner_callback_unregister
from apps.runtime.choices import NodeStatus, RunStatus
from apps.runtime.exitcodes import exit_code_explain, exit_code_from_returncode, exit_code_label
from apps.runtime.metrics import MetricLineError, MetricPoint, metric_line_parse
from apps.runtime.models import Flavor, GpuLease, Pool, Run
from apps.runtime.scheduling import placement_for, run_claim, runtime_sweep, worker_node_register
from apps.runtime.services import run_finish, run_transition, runtime_bootstrap

from .conftest import events_of, submit
from .factories import make_worker

pytestmark = pytest.mark.django_db


@pytest.fixture
def queued(owner, workspace, local_pool, cpu_flavor):
    return submit(owner, workspace, cpu_flavor, local_pool, ["python", "-c", "1"], max_restarts=1)


def test_transitions_are_compare_and_set(queued):
    stale = Run.objects.get(pk=queued.pk)
    assert run_transition(queued, RunStatus.STARTING) is True
    # A second actor holding the old row (queued) cannot take the same step again.
    assert run_transition(stale, RunStatus.STARTING) is False
    # Nor jump to a state the machine does not allow from starting.
    assert run_transition(queued, RunStatus.SUCCEEDED) is False
    assert Run.objects.get(pk=queued.pk).status == RunStatus.STARTING


def test_a_message_for_an_old_attempt_is_never_executed(queued, local_pool):
    node = make_worker(pools=[local_pool])
    assert run_claim(run_id=queued.pk, attempt=queued.attempt + 1, node=node) is None
    claimed = run_claim(run_id=queued.pk, attempt=queued.attempt, node=node)
    assert claimed is not None and claimed.status == RunStatus.STARTING
    # The same message delivered twice: the second delivery finds the run no longer queued.
    assert run_claim(run_id=queued.pk, attempt=queued.attempt, node=node) is None
    assert events_of(claimed)[-1] == "Scheduled on w1@test."


def test_gpus_are_never_double_booked(owner, workspace, local_pool, gpu_flavor):
    node = make_worker(pools=[local_pool], gpus=1)
    first = submit(owner, workspace, gpu_flavor, local_pool, ["true"])
    second = submit(owner, workspace, gpu_flavor, local_pool, ["true"])

    assert run_claim(run_id=first.pk, attempt=1, node=node).gpu_indices == [0]
    assert run_claim(run_id=second.pk, attempt=1, node=node) is None

    second.refresh_from_db()
    assert second.status == RunStatus.QUEUED
    assert second.status_reason == "Waiting for 1 GPU to free up (w1@test has 0 free)."
    assert list(GpuLease.objects.values_list("index", "run_id")) == [(0, first.pk)]
    first.refresh_from_db()
    run_finish(first, RunStatus.FAILED, reason="boom", event="boom")
    assert not GpuLease.objects.exists()
    assert run_claim(run_id=second.pk, attempt=1, node=node).gpu_indices == [0]


def test_placement_reasons_tell_capacity_from_load(owner, workspace, local_pool, gpu_flavor, cpu_flavor):
    assert placement_for(cpu_flavor, local_pool).reason == "No online worker serves pool local."
    make_worker(pools=[local_pool], hostname="cpu-only@test")
    assert placement_for(gpu_flavor, local_pool).reason == "No worker in pool local offers 1 CPU, 1 GiB, 1 GPU."
    assert placement_for(cpu_flavor, local_pool).use_pool_queue is True
    assert placement_for(cpu_flavor, local_pool, 2).reason == ("The run needs 2 workers offering 1 CPU, 1 GiB; "
                                                               "pool local has 1 online.")
    gpu_node = make_worker(pools=[local_pool], hostname="gpu@test", gpus=1)
    placement = placement_for(gpu_flavor, local_pool)
    assert [n.hostname for n in placement.nodes] == ["gpu@test"] and not placement.use_pool_queue
    run = submit(owner, workspace, gpu_flavor, local_pool, ["true"])
    run_claim(run_id=run.pk, attempt=1, node=gpu_node)
    assert placement_for(gpu_flavor, local_pool).reason == "Waiting for 1 GPU to free up on a worker of pool local."
    Pool.objects.filter(pk=local_pool.pk).update(status="disabled")
    local_pool.refresh_from_db()
    assert placement_for(cpu_flavor, local_pool).reason == "Pool local is disabled."


def test_sweep_marks_silent_runs_lost_and_restarts_them(queued, local_pool, settings):
    settings.ATELIER_RUNTIME_LOST_SECONDS = 30
    node = make_worker(pools=[local_pool])
    run = run_claim(run_id=queued.pk, attempt=1, node=node)
    run_transition(run, RunStatus.RUNNING, pid=4242)
    long_ago = timezone.now() - timedelta(seconds=45)
    Run.objects.filter(pk=run.pk).update(heartbeat_at=long_ago)
    type(node).objects.filter(pk=node.pk).update(last_heartbeat=long_ago)

    result = runtime_sweep()

    run.refresh_from_db()
    node.refresh_from_db()
    assert result["lost"] == 1 and result["offline"] == 1
    assert node.status == NodeStatus.OFFLINE
    assert (run.status, run.attempt, run.auto_restarts, run.worker, run.pid) == (RunStatus.QUEUED, 2, 1, None, None)
    messages = events_of(run)
    assert messages[-2].startswith("Lost: w1@test stopped sending heartbeats (4")
    assert messages[-1] == "Restarted (1/1) after lost worker."


def test_lost_twice_with_one_restart_allowed_stays_lost(queued, local_pool, settings):
    settings.ATELIER_RUNTIME_LOST_SECONDS = 30
    node = make_worker(pools=[local_pool])
    for _ in range(2):
        run = Run.objects.get(pk=queued.pk)
        run = run_claim(run_id=run.pk, attempt=run.attempt, node=node)
        Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=60))
        runtime_sweep()
    run = Run.objects.get(pk=queued.pk)
    assert (run.status, run.attempt, run.auto_restarts) == (RunStatus.LOST, 2, 1)


def test_a_run_lost_while_stopping_ends_stopped(queued, local_pool, settings):
    settings.ATELIER_RUNTIME_LOST_SECONDS = 30
    node = make_worker(pools=[local_pool])
    run = run_claim(run_id=queued.pk, attempt=1, node=node)
    run_transition(run, RunStatus.STOPPING, reason="Stopped by alice.")
    Run.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now() - timedelta(seconds=60))

    runtime_sweep()

    run.refresh_from_db()
    assert run.status == RunStatus.STOPPED and run.attempt == 1


def test_a_restarted_worker_ends_the_runs_of_its_previous_life(queued, local_pool):
    node = make_worker(pools=[local_pool])
    run_claim(run_id=queued.pk, attempt=1, node=node)

    registered, stale = worker_node_register(hostname="w1@test", pool_names=["local", "gpu"], slots=3, pid=99)

    assert [r.pk for r in stale] == [queued.pk]
    assert sorted(p.name for p in registered.pools.all()) == ["gpu", "local"]
    assert Pool.objects.get(name="gpu").job_types == ["training", "notebook", "inference"]
    run = Run.objects.get(pk=queued.pk)
    assert run.status == RunStatus.QUEUED and run.attempt == 2
    assert "Lost: its worker w1@test restarted." in events_of(run)


def test_owner_callbacks_hear_status_changes_after_commit(owner, workspace, local_pool, cpu_flavor,
                                                          django_capture_on_commit_callbacks):
    heard = []
    owner_callback_register("tests.owner", heard.append)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = submit(owner, workspace, cpu_flavor, local_pool, ["true"], owner_type="tests.owner",
                         owner_id=7)
            run_transition(run, RunStatus.STARTING)
            assert heard == []  # nothing before commit
        with django_capture_on_commit_callbacks(execute=True):
            run_transition(run, RunStatus.RUNNING)
    finally:
        owner_callback_unregister("tests.owner")
    assert [(c.previous, c.status, c.owner_id, c.kind) for c in heard] == [
        ("queued", "starting", "7", "status"), ("starting", "running", "7", "status")]


def test_a_failing_callback_does_not_undo_the_change(owner, workspace, local_pool, cpu_flavor,
                                                     django_capture_on_commit_callbacks):
    def broken(change):
        raise RuntimeError("owner bug")

    owner_callback_register("x.y", broken)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            run = submit(owner, workspace, cpu_flavor, local_pool, ["true"], owner_type="x.y", owner_id=1)
            assert run_transition(run, RunStatus.STARTING) is True
    finally:
        owner_callback_unregister("x.y")
    assert Run.objects.get(pk=run.pk).status == RunStatus.STARTING


def test_group_failure_stops_queued_peers_and_restarts_the_group(owner, workspace, local_pool, cpu_flavor):
    rank0 = submit(owner, workspace, cpu_flavor, local_pool, ["true"], node_count=2, max_restarts=1)
    rank1 = Run.objects.get(group=rank0.group, node_rank=1)
    node = make_worker(pools=[local_pool])
    rank0 = run_claim(run_id=rank0.pk, attempt=1, node=node)
    run_transition(rank0, RunStatus.RUNNING)

    run_finish(rank0, RunStatus.FAILED, reason="Exited with exit code 1 (general error).", event="Failed.",
               exit_code=1)

    rank0.refresh_from_db()
    rank1.refresh_from_db()
    assert (rank0.status, rank0.attempt) == (RunStatus.QUEUED, 2)
    assert (rank1.status, rank1.attempt) == (RunStatus.QUEUED, 2)
    assert "[worker-1] Node 0 ended (Exited with exit code 1 (general error)); stopping the others. " \
           "Removed from the queue." in events_of(rank1)
    assert events_of(rank1)[-1] == "[worker-1] Restarted (1/1) after failure (Exited with exit code 1 " \
                                   "(general error))."


def test_bootstrap_is_idempotent_and_sized_to_the_machine(db, settings):
    import psutil

    settings.ATELIER_WORKER_GPUS = "2"
    first = runtime_bootstrap()
    assert first["pools"] == ["local"]
    cpus = psutil.cpu_count()
    expected_cpu = [size for size in (1, 2, 4, 8, 16, 32, 64, 128) if size <= cpus]
    assert [f.cpus for f in Flavor.objects.filter(gpus=0)] == expected_cpu
    assert [f.gpus for f in Flavor.objects.filter(gpus__gt=0)] == [1, 2]
    assert all(list(f.pools.values_list("name", flat=True)) == ["local"] for f in Flavor.objects.all())
    assert runtime_bootstrap() == {"pools": [], "flavors": []}


@pytest.mark.parametrize(("code", "text"), [
    (0, "exit code 0 (success)"), (1, "exit code 1 (general error)"),
    (137, "exit code 137 (killed (SIGKILL), likely out of memory)"), (143, "exit code 143 (terminated (SIGTERM))"),
    (127, "exit code 127 (command not found)"), (135, "exit code 135 (killed by signal SIGBUS)"),
    (42, "exit code 42 (error reported by the program)"),
])
def test_exit_codes_in_words(code, text):
    assert exit_code_label(code) == text


def test_signal_deaths_are_recorded_the_shell_way():
    assert exit_code_from_returncode(-9) == 137
    assert exit_code_from_returncode(-15) == 143
    assert exit_code_from_returncode(3) == 3
    assert exit_code_explain(None) == ""


@pytest.mark.parametrize(("line", "expected"), [
    ('ATELIER_METRIC {"name": "loss", "value": 0.5, "step": 3}', MetricPoint("loss", 0.5, 3)),
    ('ATELIER_METRIC {"name": "acc", "value": 1}', MetricPoint("acc", 1.0, None)),
    ("plain output", None),
])
def test_metric_lines(line, expected):
    assert metric_line_parse(line) == expected


@pytest.mark.parametrize(("line", "message"), [
    ("ATELIER_METRIC {oops", "the text after ATELIER_METRIC is not valid JSON"),
    ("ATELIER_METRIC [1]", "the text after ATELIER_METRIC must be a JSON object"),
    ('ATELIER_METRIC {"value": 1}', '"name" must be text of 1-100 characters'),
    ('ATELIER_METRIC {"name": "x", "value": NaN}', 'metric "x": "value" must be a finite number'),
    ('ATELIER_METRIC {"name": "x", "value": true}', 'metric "x": "value" must be a finite number'),
    ('ATELIER_METRIC {"name": "x", "value": 1, "step": -1}', 'metric "x": "step" must be a whole number >= 0'),
])
def test_malformed_metric_lines_are_explained(line, message):
    with pytest.raises(MetricLineError) as caught:
        metric_line_parse(line)
    assert str(caught.value) == message
