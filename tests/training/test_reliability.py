"""Reliability on real workers: auto-stop after the maximum runtime (running time only), one failed node
failing the whole job, per-node pipeline events with durations, resource samples, and a suspected hang
that is reported without stopping the job."""
from __future__ import annotations

import io
import re
import sys
import time
import zipfile

import pytest

from apps.core.services import events_for
from apps.runtime.choices import RunStatus
from apps.runtime.models import RunSample
from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import training_job_create, training_jobs_dispatch

from .conftest import job_events, job_log, put_tree, wait_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TICKING = '''
import time
for i in range(600):
    print(f"tick {i}", flush=True)
    time.sleep(0.2)
'''


def _create(owner, workspace, pool, flavor, name, files, **kwargs):
    put_tree(f"storage://train-data/{name}", files)
    return training_job_create(user=owner, workspace=workspace, name=name, pool=pool, flavor=flavor,
                               experiment="none", code_dir=f"storage://train-data/{name}", boot_file="train.py",
                               **kwargs)


def test_max_runtime_terminates_the_job_counting_only_running_time(training_worker, owner, workspace, bucket,
                                                                   local_pool, cpu_flavor, settings):
    # One "hour" of max runtime lasts 3 s here. Neither the queue (the job is queued before any worker
    # exists; its start-up takes seconds) nor the preparation inside the run (a 3 s pre-start hook) counts.
    settings.ATELIER_TRAINING_RUNTIME_HOUR_SECONDS = 3
    job = _create(owner, workspace, local_pool, cpu_flavor, "autostop",
                  {"train.py": TICKING, "ma-pre-start.sh": "sleep 3\n"}, max_runtime_hours=1)
    queued_at = time.monotonic()
    training_worker()
    training_jobs_dispatch()
    job = wait_job(job, TrainingStatus.TERMINATED, timeout=60)

    assert time.monotonic() - queued_at > 3
    assert job.status_reason == "Terminated: reached the maximum runtime of 1 h."
    assert job_events(job)[-1] == "训练作业已被终止（最大运行时长：1h） / Training job terminated (max runtime: 1h)."
    run = job_runs(job)[0]
    assert run.status == RunStatus.FAILED and run.exit_code == 143  # SIGTERM, then no restart
    assert (run.finished_at - run.started_at).total_seconds() >= 6, "\n".join(job_log(job)[:30])  # hook + code
    lines = job_log(job)
    assert "tick 5" in lines
    ticks = [line for line in lines if line.startswith("tick ")]
    assert 10 <= len(ticks) <= 25  # about 3 s of the user's code at 5 ticks a second


FAIL_ON_RANK_1 = '''
import os, sys, time
if os.environ["VC_TASK_INDEX"] == "1":
    print("rank 1 gives up", flush=True)
    sys.exit(3)
time.sleep(600)
'''


def test_one_failed_node_terminates_its_peer_and_fails_the_job(training_worker, owner, workspace, bucket,
                                                               local_pool, cpu_flavor):
    training_worker(name="node-a")
    training_worker(name="node-b")
    job = _create(owner, workspace, local_pool, cpu_flavor, "peerfail", {"train.py": FAIL_ON_RANK_1}, node_count=2)
    job = wait_job(job, TrainingStatus.FAILED, timeout=90)

    rank0, rank1 = job_runs(job)
    assert (rank1.status, rank1.exit_code) == (RunStatus.FAILED, 3)
    assert rank0.status == RunStatus.STOPPED and rank0.exit_code == 143
    assert rank0.status_reason.startswith("Node 1 ended (Exited with exit code 3")
    assert job_events(job)[-1] == "训练作业运行失败 / Training job failed."
    assert job.failure["node"] == 1


BUSY_THEN_SILENT = '''
import time
end = time.monotonic() + 1.5
x = 0
while time.monotonic() < end:
    x += 1
time.sleep(3.5)  # silent and idle: reported as a suspected hang, never stopped
print("woke up", flush=True)
'''


def _wheel() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tinydep/__init__.py", 'VALUE = "ok"\n')
        zf.writestr("tinydep-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n")
        zf.writestr("tinydep-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                   "Tag: py3-none-any\n")
        zf.writestr("tinydep-1.0.dist-info/RECORD", "")
    return buf.getvalue()


def test_pipeline_events_resource_samples_and_a_reported_hang(training_worker, owner, workspace, bucket, local_pool,
                                                              cpu_flavor, client):
    training_worker(env={"ATELIER_RUNTIME_RUN_SAMPLE_SECONDS": "1", "ATELIER_RUNTIME_HANG_SECONDS": "2"})
    job = _create(owner, workspace, local_pool, cpu_flavor, "pipeline", {
        "train.py": BUSY_THEN_SILENT, "requirements.txt": "./tinydep-1.0-py3-none-any.whl\n",
        "tinydep-1.0-py3-none-any.whl": _wheel(), "ma-pre-start.sh": "echo hook\n"})
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=90)

    run = job_runs(job)[0]
    node_events = [e.message for e in events_for(run)]
    steps = [re.sub(r"\d+ (秒|s)\b", r"N \1", re.sub(r"\d+(\.\d+)? (bytes|KiB|MiB)\b", "SIZE", m))
             for m in node_events if m.startswith("[worker-0] ")]
    assert steps == [
        "[worker-0] 训练代码下载中 / Downloading the training code",
        "[worker-0] [耗时: N 秒] 训练代码下载完成 / Training code downloaded: 4 files, SIZE (took N s)",
        "[worker-0] 训练环境准备中 / Preparing the training environment",
        "[worker-0] 训练环境预检中 / Environment pre-check running",
        "[worker-0] [耗时: N 秒] 预检完成 / Pre-check done (took N s)",
        "[worker-0] 正在安装Python依赖包 / Installing Python dependencies, file: requirements.txt",
        "[worker-0] [耗时: N 秒] Python依赖包安装完成 / Python dependencies installed, file: requirements.txt "
        "(took N s)",
        "[worker-0] 正在执行启动前脚本 ma-pre-start.sh / Running the pre-start hook ma-pre-start.sh",
        "[worker-0] [耗时: N 秒] 启动前脚本 ma-pre-start.sh 执行完成 / Pre-start hook ma-pre-start.sh done (took N s)",
        "[worker-0] 训练任务开始运行 / Training process started",
        "[worker-0] 训练任务运行结束, 退出码 0 / Training process ended, exit code 0",
    ]
    lines = job_log(job)
    assert any(re.fullmatch(r"\[atelier\] \[耗时: \d+ 秒\] 预检完成 / Pre-check done \(took \d+ s\)", line) for line in lines)
    assert not any(line.startswith("ATELIER_EVENT ") for line in lines)
    assert "woke up" in lines

    hang = [m for m in job_events(job) if "Suspected hang" in m]
    assert hang == ["系统检测到您的作业疑似卡死，请及时前往作业详情界面查看并处理 / "
                    "Suspected hang: worker-0 shows no output and almost no CPU use for 2 s. The job keeps running; "
                    "check it on the job page."]

    samples = list(RunSample.objects.filter(run=run).order_by("at"))
    assert len(samples) >= 3
    # The busy loop: a clear share of the flavor's one core (less than all of it on a loaded machine).
    assert max(s.cpu_percent for s in samples) > 15
    assert samples[-1].cpu_percent < 5  # asleep
    assert all(s.memory_mb > 1 and s.gpu_percent is None for s in samples)

    client.force_login(owner)
    page = client.get(f"/training/jobs/{job.pk}/", {"tab": "events"}).content.decode()
    assert "[worker-0] [耗时: " in page and "Pre-check done" in page


PRECHECK_FAIL_SPEC = {"root_bytes": 1 << 62}


@pytest.mark.parametrize("skip", ["0", "1"])
def test_precheck_items_logged_and_switched_off_with_ma_skip_image_detect_0(tmp_path, skip):
    """The launcher alone (no worker): an impossible root-disk threshold fails the pre-check with its item
    and code; MA_SKIP_IMAGE_DETECT=0 in the user's variables skips it and the code runs."""
    import json
    import os
    import subprocess

    from apps.training.launch_spec import LAUNCHER

    code = tmp_path / "inputs" / "code"
    code.mkdir(parents=True)
    (code / "train.py").write_text("print('user code ran')\n")
    spec = {"code": {"input": "code", "folder": "code"}, "boot": {"kind": "file", "path": "train.py"},
            "precheck": {**PRECHECK_FAIL_SPEC, "shm_bytes": 0, "cache_bytes": 0}, "user_env": {"MA_SKIP_IMAGE_DETECT": skip}}
    env = {"PATH": os.environ["PATH"], "ATELIER_WORK_DIR": str(tmp_path), "VC_WORKER_HOSTS": "localhost"}
    result = subprocess.run([sys.executable, str(LAUNCHER), json.dumps(spec)], capture_output=True, text=True,
                            env=env, timeout=60)
    out = result.stdout.splitlines()
    if skip == "0":
        assert result.returncode == 0, result.stdout + result.stderr
        assert "user code ran" in out and not any("item:" in line for line in out)
        return
    assert result.returncode == 13
    assert "[atelier][INFO][detect] code: 0, message: ok, item: dns" in out
    assert any(re.fullmatch(r'\[atelier\]\[ERROR\]\[detect\] code: 13, message: the disk space of the path "/" is '
                            r'\d+, which is less than 4611686018427387904, item: disk-size root', line) for line in out)
    assert "[atelier][INFO][detect] code: 0, message: ok, item: disk-size shm" in out
    events = [json.loads(line[len("ATELIER_EVENT "):]) for line in out if line.startswith("ATELIER_EVENT ")]
    assert events[0] == {"message": "训练环境准备中 / Preparing the training environment", "level": "info",
                         "runtime_clock": "hold"}
    # The code download is the engine's step; placing the staged folder is only a log line.
    assert any(line.startswith("[atelier] Training code placed at ") for line in out)
    assert events[1]["message"] == "训练环境预检中 / Environment pre-check running"
    assert events[2]["level"] == "error" and events[2]["message"].startswith(
        "检查失败。发现错误 / Check failed. Error found: disk-size root")
    assert "user code ran" not in out


def test_precheck_checks_ulimits_when_infiniband_is_used(tmp_path):
    """With NCCL_IB_HCA set (RDMA), the pre-check adds item "ulimit" with ModelArts' minimums."""
    import json
    import os
    import resource
    import subprocess

    from apps.training.launch_spec import LAUNCHER

    code = tmp_path / "inputs" / "code"
    code.mkdir(parents=True)
    (code / "train.py").write_text("print('user code ran')\n")
    spec = {"code": {"input": "code", "folder": "code"}, "boot": {"kind": "file", "path": "train.py"},
            "precheck": {"root_bytes": 0, "shm_bytes": 0, "cache_bytes": 0}, "user_env": {"NCCL_IB_HCA": "mlx5_0"}}
    env = {"PATH": os.environ["PATH"], "ATELIER_WORK_DIR": str(tmp_path)}

    def launch(nofile: int) -> list[str]:
        def limit():  # in the child only: a low open-files limit, as a badly set-up RDMA node has
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        result = subprocess.run([sys.executable, str(LAUNCHER), json.dumps(spec)], capture_output=True, text=True,
                                env=env, timeout=60, preexec_fn=limit)
        return result.stdout.splitlines()

    out = launch(256)
    line = next(line for line in out if line.endswith("item: ulimit"))
    assert line.startswith("[atelier][ERROR][detect] code: 13, message: ")
    assert "open files is 256, not more than 1000000" in line
    assert "user code ran" not in out


def test_a_node_failing_its_pre_check_is_isolated_and_the_restart_runs_elsewhere(training_worker, owner, workspace,
                                                                                 bucket, local_pool, cpu_flavor):
    from apps.runtime.models import Run, WorkerNode
    from apps.runtime.scheduling import runs_dispatch

    from tests.runtime.conftest import wait_for

    # This worker's address does not resolve: the dns item of the pre-check fails on it.
    training_worker(name="badnode", env={"ATELIER_WORKER_HOST": "atelier-bad-node.invalid"})
    job = _create(owner, workspace, local_pool, cpu_flavor, "isolate", {"train.py": "print('trained', flush=True)\n"},
                  auto_restart=1)
    bad = WorkerNode.objects.get(hostname__startswith="badnode@")
    wait_for(lambda: Run.objects.filter(owner_id=str(job.pk), attempt=2, status=RunStatus.QUEUED,
                                        excluded_workers=[bad.pk]).exists(), timeout=60,
             message="the restart to be queued away from the node that failed its pre-check")
    training_worker(name="goodnode")
    runs_dispatch()
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=60)

    run = job_runs(job)[0]
    assert run.worker.hostname.startswith("goodnode@") and job.restart_count == 1
    assert "trained" in job_log(job)
    assert any(line.startswith("[atelier][ERROR][detect] code: 13, message: cannot resolve atelier-bad-node.invalid")
               for line in job_log(job))
    assert f"{bad.hostname} failed the environment pre-check; the restart runs on another worker." in [
        e.message for e in events_for(run)]
