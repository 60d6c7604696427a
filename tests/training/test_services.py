"""Refusals of the training services: every bad input is named, nothing is saved."""
from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from apps.core.models import AuditEntry
from apps.runtime.models import Pool, WorkerNode
from apps.training import hyperparameters as hp
from apps.training.models import Experiment, TrainingJob
from apps.training.services import algorithm_create, training_job_create

from .conftest import put_tree

pytestmark = pytest.mark.django_db

DEFS = [{"name": "lr", "type": "Float", "default": 0.01, "constraint": {"kind": "range", "min": 0.0001, "max": 1},
         "required": True, "description": "learning rate"},
        {"name": "optimizer", "type": "String", "default": "adam",
         "constraint": {"kind": "enum", "values": ["adam", "sgd"]}, "required": False, "description": ""},
        {"name": "epochs", "type": "Integer", "default": 3, "constraint": None, "required": False,
         "description": ""}]


def _create(owner, workspace, pool, flavor, **overrides):
    values = dict(user=owner, workspace=workspace, name="job-1", pool=pool, flavor=flavor, experiment="none",
                  code_dir="storage://train-data/code", boot_file="train.py")
    values.update(overrides)
    return training_job_create(**values)


@pytest.fixture
def code(bucket):
    return put_tree("storage://train-data/code", {"train.py": "print('hi')\n", "lib/util.py": "X = 1\n"})


def _messages(exc) -> dict:
    return exc.value.message_dict


def test_hyperparameter_definitions_and_values():
    defs = hp.definitions_clean(DEFS)
    assert hp.values_clean(defs, {"lr": "0.5", "epochs": "7"}) == [
        {"name": "lr", "type": "Float", "value": 0.5}, {"name": "optimizer", "type": "String", "value": "adam"},
        {"name": "epochs", "type": "Integer", "value": 7}]
    with pytest.raises(ValidationError) as exc:
        hp.values_clean(defs, {"lr": "2"})
    assert _messages(exc) == {"hyperparameters": ["lr: 2 is outside the allowed range 0.0001 to 1."]}
    with pytest.raises(ValidationError) as exc:
        hp.values_clean(defs, {"epochs": "three"})
    assert _messages(exc) == {"hyperparameters": ["epochs: 'three' is not an Integer."]}
    with pytest.raises(ValidationError) as exc:
        hp.values_clean(defs, {"optimizer": "rmsprop"})
    assert _messages(exc) == {"hyperparameters": ["optimizer: rmsprop is not one of the allowed values (adam, sgd)."]}
    with pytest.raises(ValidationError) as exc:
        hp.values_clean(defs, {"lr": None})
    assert _messages(exc) == {"hyperparameters": ["lr: this hyperparameter is required and cannot be removed."]}
    assert [v["name"] for v in hp.values_clean(defs, {"optimizer": None})] == ["lr", "epochs"]
    with pytest.raises(ValidationError) as exc:
        hp.definitions_clean([{"name": "bad name", "type": "Float", "default": 1}])
    assert "is not a valid name" in _messages(exc)["hyperparameters"][0]
    with pytest.raises(ValidationError) as exc:
        hp.definitions_clean([{"name": "lr", "type": "Float", "default": 5, "constraint": {"kind": "range", "max": 1}}])
    assert _messages(exc) == {"hyperparameters": ["Hyperparameter lr default: 5 is outside the allowed range -∞ to 1."]}


def test_bad_job_inputs_are_refused_with_the_field_and_rule(owner, workspace, local_pool, cpu_flavor, code):
    cases = [
        ({"name": "has space"}, "name", '"has space" is not a valid name: 1–64 characters: letters, digits, - and _.'),
        ({"name": "x" * 65}, "name", None),
        ({"boot_file": "../outside.py"}, "boot_file",
         "The boot file must lie inside the code folder storage://train-data/code."),
        ({"boot_file": "lib/util.txt"}, "boot_file", '"lib/util.txt" is not a Python file; the boot file must end in .py.'),
        ({"boot_file": "storage://train-data/other/train.py"}, "boot_file",
         "The boot file must lie inside the code folder storage://train-data/code."),
        ({"boot_file": "missing.py"}, "boot_file", "storage://train-data/code/missing.py does not exist."),
        ({"inputs": [{"name": "data_url", "uri": "storage://train-data/nope"}]}, "inputs",
         "data_url: storage://train-data/nope does not exist."),
        ({"node_count": 3}, "node_count",
         "3 nodes requested, but pool local has 0 online workers that can serve cpu-1c-1g; one node runs per worker."),
        ({"priority": 4}, "priority", "Priority is 1, 2 or 3."),
        ({"auto_restart": 5}, "auto_restart", "Auto-restart is off (0) or a count from 1 to 3."),
        ({"max_runtime_hours": 721}, "max_runtime_hours", "Auto-stop: give a whole number of hours from 1 to 720."),
        ({"env": {"RANK": "3"}}, "env", "RANK is set by the platform for every node and cannot be overridden."),
        ({"experiment": "existing", "experiment_id": 999}, "experiment_id", "Choose an experiment of this workspace."),
        ({"boot_mode": "custom", "boot_command": "python a.py\npython b.py"}, "boot_command",
         "Join several commands with ; or && on one line; newlines are not supported."),
    ]
    for overrides, field, message in cases:
        with pytest.raises(ValidationError) as exc:
            _create(owner, workspace, local_pool, cpu_flavor, **overrides)
        assert field in _messages(exc), (overrides, _messages(exc))
        if message:
            assert _messages(exc)[field] == [message], overrides
    assert TrainingJob.objects.count() == 0
    assert not AuditEntry.objects.filter(action="trainjob:create").exists()


def test_code_folder_limits(owner, workspace, local_pool, cpu_flavor, bucket):
    put_tree("storage://train-data/big", {f"f{i}.py": "" for i in range(1001)})
    with pytest.raises(ValidationError) as exc:
        _create(owner, workspace, local_pool, cpu_flavor, code_dir="storage://train-data/big", boot_file="f1.py")
    assert _messages(exc) == {"code_dir": ["storage://train-data/big holds more than 1000 files and folders; keep "
                                           "only code in it."]}
    put_tree("storage://train-data/deep", {"/".join(["d"] * 33) + "/x.py": ""})
    with pytest.raises(ValidationError) as exc:
        _create(owner, workspace, local_pool, cpu_flavor, code_dir="storage://train-data/deep", boot_file="x.py")
    assert _messages(exc)["code_dir"] == ["storage://train-data/deep is 34 levels deep; at most 32 are allowed."]


def test_duplicate_experiment_name_and_outsider_code_are_refused(owner, workspace, outsider, local_pool, cpu_flavor,
                                                                 code):
    Experiment.objects.create(workspace=workspace, name="exp-a")
    with pytest.raises(ValidationError) as exc:
        _create(owner, workspace, local_pool, cpu_flavor, experiment="new", experiment_name="exp-a")
    assert _messages(exc)["experiment_name"][0].startswith('An experiment named "exp-a" already exists')
    with pytest.raises(Exception):
        _create(outsider, workspace, local_pool, cpu_flavor)
    assert TrainingJob.objects.count() == 0


def test_job_is_queued_by_priority_when_the_pool_is_full(owner, workspace, local_pool, cpu_flavor, code,
                                                         django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        low = _create(owner, workspace, local_pool, cpu_flavor, name="low", priority=1)
    with django_capture_on_commit_callbacks(execute=True):
        high = _create(owner, workspace, local_pool, cpu_flavor, name="high", priority=2)
    low.refresh_from_db()
    high.refresh_from_db()
    # No worker at all: both wait; the higher priority is first in line.
    assert (high.status, low.status) == ("pending", "pending")
    assert high.status_reason.startswith("Queued (position 1 in pool local)")
    assert low.status_reason.startswith("Queued (position 2 in pool local)")


def test_algorithm_name_cannot_change_and_boot_file_must_be_python(owner, workspace, code):
    algorithm = algorithm_create(user=owner, workspace=workspace, name="algo", code_dir="storage://train-data/code",
                                 boot_file="train.py", hyperparameters=DEFS)
    from apps.training.services import algorithm_update

    with pytest.raises(ValidationError) as exc:
        algorithm_update(user=owner, algorithm=algorithm, name="renamed")
    assert _messages(exc) == {"name": ["The name of an algorithm cannot be changed."]}
    with pytest.raises(ValidationError) as exc:
        algorithm_update(user=owner, algorithm=algorithm, boot_file="lib")
    assert _messages(exc) == {"boot_file": ['"lib" is not a Python file; the boot file must end in .py.']}
