"""The execution contract on a real worker: code, channels, arguments, environment, requirements, hook."""
from __future__ import annotations

import io
import json
import zipfile

import pytest

from apps.runtime.models import Metric
from apps.training.choices import TrainingStatus
from apps.training.selectors import job_runs
from apps.training.services import training_job_create

from .conftest import job_events, job_log, put, put_tree, read, wait_job

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

TRAIN = '''
import argparse, json, os, sys
from atelier import log_metric
import tinydep
parser = argparse.ArgumentParser()
parser.add_argument("--data_url")
parser.add_argument("--lr", type=float)
parser.add_argument("--epochs", type=int)
parser.add_argument("--shuffle")
args, unknown = parser.parse_known_args()
names = ["MA_HOME", "MA_JOB_DIR", "MA_MOUNT_PATH", "MA_LOG_DIR", "MA_SCRIPT_INTERPRETER", "WORKSPACE",
         "MA_CURRENT_IP", "MA_NUM_GPUS", "MA_TASK_NAME", "MA_NUM_HOSTS", "VC_TASK_INDEX", "VC_WORKER_NUM",
         "VC_WORKER_HOSTS", "MA_CURRENT_INSTANCE_NAME", "MA_SKIP_IMAGE_DETECT", "MA_APIGW_ENDPOINT", "train_url",
         "MY_FLAG", "PYTHONPATH", "HOOK_RAN"]
print("ENV " + json.dumps({n: os.environ.get(n) for n in names}), flush=True)
print("ARGV " + json.dumps(sys.argv[1:]), flush=True)
print("CWD " + os.getcwd(), flush=True)
print("DEP " + tinydep.VALUE, flush=True)
data = open(os.path.join(args.data_url, "numbers.txt")).read().split()
total = sum(int(x) for x in data)
for epoch in range(args.epochs):
    log_metric("loss", 1.0 / (epoch + 1), step=epoch)
out = os.environ["train_url"]
with open(os.path.join(out, "result.json"), "w") as fh:
    json.dump({"total": total, "lr": args.lr, "shuffle": args.shuffle}, fh)
'''


def _wheel() -> bytes:
    """A minimal pure-Python wheel (tinydep 1.0) so requirements install without a network."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("tinydep/__init__.py", 'VALUE = "tinydep-ok"\n')
        zf.writestr("tinydep-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: tinydep\nVersion: 1.0\n")
        zf.writestr("tinydep-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                                   "Tag: py3-none-any\n")
        zf.writestr("tinydep-1.0.dist-info/RECORD", "")
    return buf.getvalue()


def test_custom_script_job_end_to_end(training_worker, owner, workspace, bucket, local_pool, cpu_flavor):
    training_worker()
    put_tree("storage://train-data/demo-code", {
        "train.py": TRAIN, "requirements.txt": "./tinydep-1.0-py3-none-any.whl\n",
        "tinydep-1.0-py3-none-any.whl": _wheel(), "ma-pre-start.sh": "echo hook-ran > $MA_LOG_DIR/hook.txt\n",
    })
    put("storage://train-data/input/numbers.txt", "1 2 3 4")

    job = training_job_create(
        user=owner, workspace=workspace, name="custom-1", pool=local_pool, flavor=cpu_flavor,
        experiment="new", experiment_name="exp-a", code_dir="storage://train-data/demo-code", boot_file="train.py",
        inputs=[{"name": "data_url", "uri": "storage://train-data/input"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/out", "acquisition": "env"}],
        hyperparameters={"lr": "0.01", "epochs": "3", "shuffle": "true"}, env={"MY_FLAG": "on"},
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=90)

    run = job_runs(job)[0]
    lines = job_log(job)
    env = json.loads(next(line for line in lines if line.startswith("ENV "))[4:])
    run_dir = run.work_path or env["MA_MOUNT_PATH"]
    assert env["MA_MOUNT_PATH"] == env["MA_HOME"] == run_dir
    assert env["MA_JOB_DIR"] == f"{run_dir}/user-job-dir"
    assert env["WORKSPACE"] == f"{run_dir}/user-job-dir/demo-code"
    assert env["MA_LOG_DIR"] == f"{run_dir}/log"
    assert env["MA_SCRIPT_INTERPRETER"] == ""
    assert env["train_url"] == f"{run_dir}/outputs/train_url_0"
    assert (env["MA_NUM_HOSTS"], env["VC_TASK_INDEX"], env["VC_WORKER_NUM"], env["MA_NUM_GPUS"]) == ("1", "0", "1", "0")
    assert env["MA_TASK_NAME"] == "worker" and env["MA_CURRENT_IP"] == "127.0.0.1"
    assert env["VC_WORKER_HOSTS"] == "127.0.0.1"
    assert env["MA_SKIP_IMAGE_DETECT"] == "1"
    assert env["MA_APIGW_ENDPOINT"] == "http://127.0.0.1:8000/api/v1/"
    assert env["MY_FLAG"] == "on"
    assert f"{run_dir}/user-job-dir" in env["PYTHONPATH"].split(":")
    argv = json.loads(next(line for line in lines if line.startswith("ARGV "))[5:])
    assert argv == [f"--data_url={run_dir}/inputs/data_url_0", "--epochs=3", "--lr=0.01", "--shuffle=true"]
    assert f"CWD {run_dir}/user-job-dir/demo-code" in lines
    assert "DEP tinydep-ok" in lines
    assert "[atelier][INFO][detect] code: 0, message: ok, item: disk-size root" in lines
    assert "[atelier] 正在安装Python依赖包 / Installing Python dependencies, file: requirements.txt" in lines
    assert any(line.startswith("[atelier] 正在执行启动前脚本 ma-pre-start.sh / Running the pre-start hook") for line in lines)

    assert json.loads(read("storage://train-data/out/result.json")) == {"total": 10, "lr": 0.01, "shuffle": "true"}
    losses = list(Metric.objects.filter(run=run, name="loss").order_by("step").values_list("step", "value"))
    assert losses == [(0, 1.0), (1, 0.5), (2, 1.0 / 3)]
    events = job_events(job)
    assert events[0] == "训练作业创建成功 / Training job created."
    assert "训练作业开始运行 / Training job started running." in events
    assert events[-1] == "训练作业运行成功 / Training job completed."
    assert job.started_at is not None and job.finished_at is not None and job.experiment.name == "exp-a"
