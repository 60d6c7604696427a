"""The per-node pipeline events of a training job (seed-05 §4, items 17–32) on a real worker: the
engine's own steps (code and input download, process end, output upload) in the documented
wording next to the launcher's steps, in the documented order, plus the wording of failed steps."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest

from apps.core.services import events_for
from apps.runtime import runevents
from apps.runtime.runevents import (
    STEP_INPUT_FAILED,
    STEP_NODES_READY,
    STEP_NODES_WAITING,
    STEP_OUTPUT_FAILED,
    STEP_OUTPUT_STARTED,
    STEP_PROCESS_STARTED,
    STEP_SUCCEEDED,
    PipelineStep,
    pipeline_step_text,
)
from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import OWNER_TYPE, training_job_create

from .conftest import put, put_tree, read, wait_job

TRAIN = '''
import argparse, os, pathlib
parser = argparse.ArgumentParser()
parser.add_argument("--data_url")
parser.add_argument("--train_url")
args = parser.parse_args()
total = sum(len(p.read_text()) for p in pathlib.Path(args.data_url).rglob("*.txt"))
pathlib.Path(args.train_url, "total.txt").write_text(str(total))
'''


def _normal(message: str) -> str:
    """Durations and sizes vary from run to run: N and SIZE."""
    message = re.sub(r"\d+(\.\d+)? (bytes|KiB|MiB)\b", "SIZE", message)
    return re.sub(r"\d+ (秒|s)\b", r"N \1", message)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_small_job_records_every_per_node_step_in_order(training_worker, owner, workspace, bucket, local_pool,
                                                          cpu_flavor):
    training_worker()
    put_tree("storage://train-data/steps-code", {"train.py": TRAIN})
    put("storage://train-data/steps-in/a.txt", "hello")
    put("storage://train-data/steps-in/sub/b.txt", "world!")

    job = training_job_create(
        user=owner, workspace=workspace, name="steps", pool=local_pool, flavor=cpu_flavor, experiment="none",
        code_dir="storage://train-data/steps-code", boot_file="train.py",
        inputs=[{"name": "data_url", "uri": "storage://train-data/steps-in"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/steps-out"}],
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=90)

    assert read("storage://train-data/steps-out/total.txt") == b"11"
    events = [e.message for e in events_for(job_runs(job)[0])]
    steps = [_normal(m) for m in events if m.startswith("[worker-0] ")]
    assert steps == [
        "[worker-0] 训练代码下载中 / Downloading the training code",
        "[worker-0] [耗时: N 秒] 训练代码下载完成 / Training code downloaded: 1 file, SIZE (took N s)",
        "[worker-0] 训练输入下载中 (参数名称: data_url) / Downloading input data_url",
        "[worker-0] [耗时: N 秒] 训练输入 (参数名称: data_url) 下载完成 / Input data_url downloaded: 2 files, SIZE "
        "(took N s)",
        "[worker-0] 训练环境准备中 / Preparing the training environment",
        "[worker-0] 训练环境预检中 / Environment pre-check running",
        "[worker-0] [耗时: N 秒] 预检完成 / Pre-check done (took N s)",
        "[worker-0] 训练任务开始运行 / Training process started",
        "[worker-0] 训练任务运行结束, 退出码 0 / Training process ended, exit code 0",
        "[worker-0] 训练输入上传中 / Uploading training outputs",
        "[worker-0] [耗时: N 秒] 训练输出 (参数名称: train_url) 上传完成 / Output train_url uploaded: 1 file, SIZE "
        "(took N s)",
    ]
    # The exact sizes: 5 + 6 bytes of input, the 2-byte result.
    assert "2 files, 11 bytes" in next(m for m in events if "下载完成 / Input" in m)
    assert "1 file, 2 bytes" in next(m for m in events if "上传完成" in m)


@pytest.mark.django_db
def test_failed_steps_name_the_parameter_and_the_reason(owner, workspace, bucket, local_pool, cpu_flavor):
    put_tree("storage://train-data/fail-code", {"train.py": "print(1)\n"})
    put("storage://train-data/fail-in/a.txt", "x")
    job = training_job_create(
        user=owner, workspace=workspace, name="fails", pool=local_pool, flavor=cpu_flavor, experiment="none",
        code_dir="storage://train-data/fail-code", boot_file="train.py",
        inputs=[{"name": "data_url", "uri": "storage://train-data/fail-in"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/fail-out"}],
    )
    run = SimpleNamespace(pk=0, owner_type=OWNER_TYPE, owner_id=str(job.pk))

    def text(kind, channel):
        return pipeline_step_text(run, PipelineStep(kind, channel=channel, error="disk full", seconds=2.4))

    assert text(STEP_INPUT_FAILED, "code") == ("[耗时: 2 秒] 训练代码下载失败, 失败原因: disk full / "
                                               "Training code download failed (took 2 s)")
    assert text(STEP_INPUT_FAILED, "data_url_0") == ("[耗时: 2 秒] 训练输入 (参数名称: data_url) 下载失败, 失败原因: "
                                                     "disk full / Input data_url download failed (took 2 s)")
    assert text(STEP_OUTPUT_FAILED, "train_url_0") == ("[耗时: 2 秒] 训练输出 (参数名称: train_url) 上传失败, "
                                                       "失败原因: disk full / Output train_url upload failed (took 2 s)")
    # A run that no owner words keeps the engine's English, and a failed download there is left to the run's
    # failure event.
    plain = SimpleNamespace(pk=0, owner_type="", owner_id="")
    assert pipeline_step_text(plain, PipelineStep(STEP_INPUT_FAILED, channel="data", error="x")) == ""
    assert pipeline_step_text(plain, PipelineStep(STEP_OUTPUT_FAILED, channel="model", error="x", seconds=1)) == (
        "[耗时: 1 秒] Uploading output model failed: x (took 1 s)")


def test_status_steps_are_worded_for_training_and_never_empty(monkeypatch):
    run = SimpleNamespace(pk=0, owner_type=OWNER_TYPE, owner_id="0")
    plain = SimpleNamespace(pk=0, owner_type="", owner_id="")
    cases = [
        (PipelineStep(STEP_NODES_WAITING), "等待其他节点启动 / Waiting for the other nodes.",
         "Waiting for the other nodes."),
        (PipelineStep(STEP_NODES_READY, nodes=2, address="10.0.0.1:29500"),
         "全部 2 个节点已启动, 主节点 10.0.0.1:29500 / All 2 nodes started; master 10.0.0.1:29500.",
         "All 2 nodes started; master 10.0.0.1:29500."),
        (PipelineStep(STEP_PROCESS_STARTED, pid=42), "训练进程已启动 (pid 42) / Process started (pid 42).",
         "Process started (pid 42)."),
        (PipelineStep(STEP_SUCCEEDED, exit_code=0), "运行成功, 退出码 0 / Succeeded: the process exited with code 0.",
         "Succeeded: the process exited with code 0."),
    ]
    for step, training, generic in cases:
        assert pipeline_step_text(run, step) == training
        assert pipeline_step_text(plain, step) == generic
    # A status step is also the run's status event: an owner's "" falls back to the generic wording.
    monkeypatch.setitem(runevents._WORDINGS, "tests.silent", lambda run, step: "")
    silent = SimpleNamespace(pk=0, owner_type="tests.silent", owner_id="")
    assert pipeline_step_text(silent, PipelineStep(STEP_PROCESS_STARTED, pid=7)) == "Process started (pid 7)."
    assert pipeline_step_text(silent, PipelineStep(STEP_OUTPUT_STARTED)) == ""
