"""Job life cycle on real workers: resume after a killed worker, retries by cause, terminate."""
from __future__ import annotations

import json
import time

import pytest

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.runtime.choices import RunStatus
from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import training_job_create, training_job_stop

from .conftest import job_events, job_log, put_tree, read, wait_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

CHECKPOINTING = '''
import argparse, glob, json, os, time
from atelier import log_metric, restart_count
parser = argparse.ArgumentParser(); parser.add_argument("--train_url"); parser.add_argument("--epochs", type=int)
args, _ = parser.parse_known_args()
done = sorted(int(os.path.basename(p)[6:-5]) for p in glob.glob(os.path.join(args.train_url, "epoch_*.ckpt")))
start = done[-1] + 1 if done else 1
print(f"RESUME from epoch {start} (restart {restart_count()})", flush=True)
for epoch in range(start, args.epochs + 1):
    with open(os.path.join(args.train_url, f"epoch_{epoch}.ckpt"), "w") as fh:
        fh.write(str(epoch))
    log_metric("loss", 1.0 / epoch, step=epoch)
    if epoch == 3 and restart_count() == 0:
        time.sleep(600)  # the worker is killed here
with open(os.path.join(args.train_url, "done.json"), "w") as fh:
    json.dump({"resumed_from": start}, fh)
'''


def _create(owner, workspace, pool, flavor, name, code, **kwargs):
    put_tree(f"storage://train-data/{name}", {"train.py": code})
    return training_job_create(user=owner, workspace=workspace, name=name, pool=pool, flavor=flavor,
                               experiment="none", code_dir=f"storage://train-data/{name}", boot_file="train.py",
                               **kwargs)


@pytest.mark.slow
def test_killed_worker_resumes_from_checkpoint_and_finishes(training_worker, beat, owner, workspace, bucket,
                                                            local_pool, cpu_flavor):
    doomed = training_worker(name="doomed", queues=("pool.local",))
    job = _create(owner, workspace, local_pool, cpu_flavor, "resume", CHECKPOINTING, auto_restart=1,
                  outputs=[{"name": "train_url", "uri": "storage://train-data/resume-out"}],
                  hyperparameters={"epochs": "5"})
    storage = get_storage()
    deadline = time.monotonic() + 60
    while not storage.exists(parse("storage://train-data/resume-out/epoch_3.ckpt")):
        assert time.monotonic() < deadline, "the first attempt never uploaded epoch_3.ckpt"
        time.sleep(0.2)
    training_worker(name="survivor")
    doomed.kill()

    job = wait_job(job, TrainingStatus.COMPLETED, timeout=90)
    assert json.loads(read("storage://train-data/resume-out/done.json")) == {"resumed_from": 4}
    assert job.restart_count == 1
    assert "训练作业已重启 / Training job restarted (1/1)." in job_events(job)
    lines = job_log(job)
    assert "RESUME from epoch 1 (restart 0)" in lines and "RESUME from epoch 4 (restart 1)" in lines
    assert "[atelier] Restart 1: the output folders hold what the previous attempt uploaded." in lines


MISSING_MODULE = "import not_a_real_module_xyz\n"

OOM_THEN_OK = '''
import sys
from atelier import restart_count
if restart_count() == 0:
    print("RuntimeError: CUDA out of memory. Tried to allocate 2.00 GiB", flush=True)
    sys.exit(1)
print("second attempt fine", flush=True)
'''


def test_missing_module_fails_with_cause_and_is_not_restarted(training_worker, owner, workspace, bucket, local_pool,
                                                             cpu_flavor):
    training_worker()
    job = _create(owner, workspace, local_pool, cpu_flavor, "nomod", MISSING_MODULE, auto_restart=2)
    job = wait_job(job, TrainingStatus.FAILED, timeout=60)

    assert job.failure["cause"] == "A Python module is missing."
    assert job.failure["retryable"] is False
    assert job.failure["lines"][0][1] == "ModuleNotFoundError: No module named 'not_a_real_module_xyz'"
    assert job.status_reason == "A Python module is missing."
    assert "Not restarted: A Python module is missing would fail again." in job_events(job)
    assert job.restart_count == 0
    assert job_runs(job)[0].status == RunStatus.STOPPED


def test_out_of_memory_is_retried_and_the_retry_completes(training_worker, owner, workspace, bucket, local_pool,
                                                          cpu_flavor):
    training_worker()
    job = _create(owner, workspace, local_pool, cpu_flavor, "oom", OOM_THEN_OK, auto_restart=1)
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=60)

    assert job.restart_count == 1
    assert "second attempt fine" in job_log(job)
    assert "训练作业已重启 / Training job restarted (1/1)." in job_events(job)


def test_terminate_a_running_job(training_worker, owner, workspace, bucket, local_pool, cpu_flavor):
    training_worker()
    job = _create(owner, workspace, local_pool, cpu_flavor, "sleeper", "import time\nprint('up', flush=True)\n"
                                                                       "time.sleep(600)\n")
    job = wait_job(job, TrainingStatus.RUNNING, timeout=30)
    deadline = time.monotonic() + 30
    while "up" not in job_log(job):  # the process itself runs (not only the staging before it)
        assert time.monotonic() < deadline, "the script never printed its first line"
        time.sleep(0.1)
    training_job_stop(user=owner, job=job)
    job = wait_job(job, TrainingStatus.TERMINATED, timeout=30)

    events = job_events(job)
    assert "训练作业已被手动终止 / Training job manually terminated by alice." in events
    assert events[-1] == "训练作业已终止 / Training job terminated."
    assert job.status_reason == "Terminated by a user."
    assert job_runs(job)[0].exit_code == 143


CRASH_AFTER_EPOCH_1 = '''
import argparse, os, sys
from atelier import restart_count
parser = argparse.ArgumentParser(); parser.add_argument("--train_url")
args, _ = parser.parse_known_args()
found = sorted(os.listdir(args.train_url))
print(f"ATTEMPT {restart_count() + 1} FOUND {found}", flush=True)
if restart_count() == 0:
    with open(os.path.join(args.train_url, "epoch_1.pth"), "w") as fh:
        fh.write("weights after epoch 1")
    sys.exit(3)
with open(os.path.join(args.train_url, "resumed.txt"), "w") as fh:
    fh.write(" ".join(found))
'''


def test_crashed_attempt_leaves_its_checkpoint_for_the_restart(training_worker, owner, workspace, bucket,
                                                               local_pool, cpu_flavor):
    """Spec item 37: with output pre-download on, attempt 2 finds attempt 1's epoch_1.pth before it starts."""
    training_worker()
    job = _create(owner, workspace, local_pool, cpu_flavor, "crash", CRASH_AFTER_EPOCH_1, auto_restart=1,
                  outputs=[{"name": "train_url", "uri": "storage://train-data/crash-out", "predownload": True}])
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=60)

    assert job.restart_count == 1
    assert "训练作业已重启 / Training job restarted (1/1)." in job_events(job)
    lines = job_log(job)
    assert "ATTEMPT 1 FOUND []" in lines
    assert "ATTEMPT 2 FOUND ['epoch_1.pth']" in lines
    assert read("storage://train-data/crash-out/resumed.txt") == b"epoch_1.pth"
    assert read("storage://train-data/crash-out/epoch_1.pth") == b"weights after epoch 1"
