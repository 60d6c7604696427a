"""What a run's process sees: scrubbed environment, engine variables, staged inputs, uploaded outputs, run-as user."""
from __future__ import annotations

import io
import json
import pwd
import re
import sys

import pytest

from apps.core.paths import StoragePath
from apps.core.storage import get_storage
from apps.runtime.choices import RunStatus
from apps.runtime.logstream import log_read

from .conftest import events_of, submit, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.django_db(transaction=True)]

DUMP_ENV = "import json, os; print(json.dumps(dict(os.environ)), flush=True)"


def test_environment_is_scrubbed_and_carries_the_engine_variables(engine_worker, owner, workspace, cpu_flavor,
                                                                  local_pool):
    engine_worker(env={"AWS_SECRET_ACCESS_KEY": "console-secret", "HARMLESS_SETTING": "kept"})
    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", DUMP_ENV],
                 env={"LEARNING_RATE": "0.1", "RANK": "7"})

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    env = json.loads(log_read(run, after=0).lines[0])
    leaked = sorted(k for k in env if k.startswith(("DATABASE_", "REDIS_", "AWS_", "CELERY_", "DJANGO_"))
                    or (k.startswith("ATELIER_") and k not in ENGINE_ATELIER))
    assert leaked == []
    assert env["HARMLESS_SETTING"] == "kept"
    assert env["LEARNING_RATE"] == "0.1"
    assert env["RANK"] == "0"  # engine variables win over the user's
    assert env["ATELIER_RUN_ID"] == str(run.pk)
    assert env["ATELIER_RESTART_COUNT"] == "0"
    assert env["ATELIER_ATTEMPT"] == "1"
    assert env["CUDA_VISIBLE_DEVICES"] == ""
    assert env["WORLD_SIZE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PYTHONPATH"].endswith("apps/runtime/client")


ENGINE_ATELIER = {"ATELIER_RUN_ID", "ATELIER_ATTEMPT", "ATELIER_RESTART_COUNT", "ATELIER_WORK_DIR",
                  "ATELIER_INPUTS_DIR", "ATELIER_OUTPUTS_DIR"}

COPY = """
import os, pathlib
src = pathlib.Path(os.environ["ATELIER_INPUT_DATA"])
out = pathlib.Path(os.environ["ATELIER_OUTPUT_MODEL"])
print(sorted(p.relative_to(src).as_posix() for p in src.rglob("*") if p.is_file()), flush=True)
(out / "weights.txt").write_text((src / "train" / "a.txt").read_text().upper())
(out / "sub").mkdir()
(out / "sub" / "log.txt").write_text("epoch 1")
"""


def test_inputs_are_staged_and_outputs_uploaded(engine_worker, owner, workspace, cpu_flavor, local_pool):
    from apps.storage.services import bucket_create

    bucket_create(user=owner, workspace=workspace, name="alice-data")
    storage = get_storage()
    storage.save(StoragePath("alice-data", "ds/train/a.txt"), io.BytesIO(b"hello"))
    storage.save(StoragePath("alice-data", "ds/b.txt"), io.BytesIO(b"world"))
    engine_worker()

    run = submit(owner, workspace, cpu_flavor, local_pool, [sys.executable, "-c", COPY],
                 inputs=[{"name": "data", "uri": "storage://alice-data/ds"}],
                 outputs=[{"name": "model", "uri": "storage://alice-data/out"}])
    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    assert run.status == RunStatus.SUCCEEDED, run.status_reason
    assert log_read(run, after=0).lines[0] == "['b.txt', 'train/a.txt']"
    with storage.open(StoragePath("alice-data", "out/weights.txt")) as fh:
        assert fh.read() == b"HELLO"
    with storage.open(StoragePath("alice-data", "out/sub/log.txt")) as fh:
        assert fh.read() == b"epoch 1"
    messages = events_of(run)
    # Pipeline steps in the engine's generic wording (no owner words them), in order, per node.
    steps = [re.sub(r"\d+(\.\d)? (秒|s)\b", r"N \2", m) for m in messages if m.startswith("[worker-0] ")]
    assert steps == [
        "[worker-0] Downloading input data from storage://alice-data/ds.",
        "[worker-0] Input data downloaded: 2 files, 10 bytes in N s.",
        "[worker-0] [耗时: N 秒] Process ended, exit code 0 (took N s)",
        "[worker-0] Uploading outputs.",
        "[worker-0] [耗时: N 秒] Output model uploaded: 2 files, 12 bytes (took N s)",
    ]


def test_runs_can_execute_as_another_user(engine_worker, owner, workspace, cpu_flavor, local_pool):
    nobody = pwd.getpwnam("nobody")
    engine_worker(env={"ATELIER_RUN_AS_USER": "nobody"})
    # The system interpreter: the test venv's may live under a directory only root can enter.
    run = submit(owner, workspace, cpu_flavor, local_pool,
                 ["/usr/bin/python3", "-c", "import os; print(os.getuid(), os.getgid(), os.environ['HOME'])"])

    run = wait_status(run, {RunStatus.SUCCEEDED, RunStatus.FAILED})

    assert log_read(run, after=0).lines[0] == f"{nobody.pw_uid} {nobody.pw_gid} {nobody.pw_dir}"


def test_a_missing_program_fails_with_code_127(engine_worker, owner, workspace, cpu_flavor, local_pool):
    engine_worker()
    run = submit(owner, workspace, cpu_flavor, local_pool, ["no-such-program-atelier", "--flag"])

    run = wait_status(run, {RunStatus.FAILED, RunStatus.SUCCEEDED})

    assert run.exit_code == 127
    assert run.status_reason == "Command not found: no-such-program-atelier."
    assert events_of(run)[-1] == "Failed: Command not found: no-such-program-atelier."
