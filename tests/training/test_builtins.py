"""Built-in algorithms train for real on small generated data and write servable model packages."""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from apps.core.paths import parse
from apps.core.storage import get_storage
from apps.training.choices import TrainingStatus
from apps.training.launch_spec import BUILTIN_DIR
from apps.training.services import training_job_create

from .conftest import put, read, wait_job

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def _digits_pngs():
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (image, target) in enumerate(zip(digits.images, digits.target)):
        buf = io.BytesIO()
        Image.fromarray((image * 16).clip(0, 255).astype(np.uint8)).save(buf, format="PNG")
        yield f"{target}/{index}.png", buf.getvalue()


def test_image_classification_on_digits_reaches_95_percent(training_worker, owner, workspace, bucket, local_pool,
                                                            cpu_flavor, tmp_path):
    training_worker()
    for rel, data in _digits_pngs():
        put(f"storage://train-data/digits/{rel}", data)

    job = training_job_create(
        user=owner, workspace=workspace, name="digits", pool=local_pool, flavor=cpu_flavor, experiment="none",
        boot_mode="builtin", builtin="image_classification",
        inputs=[{"name": "data_url", "uri": "storage://train-data/digits"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/digits-model"}],
        hyperparameters={"epochs": 6, "image_size": 16, "width": 16},
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=300)

    report = json.loads(read("storage://train-data/digits-model/eval_result.json"))
    assert report["accuracy"] >= 0.95
    assert [c["label"] for c in report["per_class"]] == [str(d) for d in range(10)]
    assert len(report["confusion_matrix"]) == 10 and sum(map(sum, report["confusion_matrix"])) == 359
    config = json.loads(read("storage://train-data/digits-model/model/config.json"))
    assert config["runtime"] == "atelier-torch-image-classification"
    assert config["model_algorithm"] == "image_classification" and config["model_type"] == "PyTorch"
    assert config["metrics"]["accuracy"] == report["accuracy"]

    # The package serves predictions with nothing but its own files.
    package = tmp_path / "model"
    package.mkdir()
    for name in ("config.json", "customize_service.py", "image_net.py", "model.pt"):
        get_storage().download_to(parse(f"storage://train-data/digits-model/model/{name}"), package / name)
    sample = next(data for rel, data in _digits_pngs() if rel.startswith("7/"))
    code = ("import io, json, sys; sys.path.insert(0, sys.argv[1]); import customize_service as s; "
            "svc = s.ImageClassificationService('digits', sys.argv[1]); "
            "print(json.dumps(svc.predict({'images': {'x.png': io.BytesIO(open(sys.argv[2], 'rb').read())}})))")
    (tmp_path / "seven.png").write_bytes(sample)
    answer = json.loads(subprocess.run([sys.executable, "-c", code, str(package), str(tmp_path / "seven.png")],
                                       capture_output=True, text=True, check=True).stdout)
    assert answer["predicted_label"] == "7"
    assert len(answer["scores"]) == 10


def test_image_classification_resumes_from_its_checkpoint(tmp_path):
    data = tmp_path / "data"
    for rel, png in list(_digits_pngs())[:200]:
        (data / rel).parent.mkdir(parents=True, exist_ok=True)
        (data / rel).write_bytes(png)
    script = str(BUILTIN_DIR / "image_classification.py")
    common = [f"--data_url={data}", f"--train_url={tmp_path / 'out'}", "--image_size=8", "--width=4"]
    first = subprocess.run([sys.executable, script, *common, "--epochs=1"], capture_output=True, text=True, check=True)
    assert "Resuming" not in first.stdout
    second = subprocess.run([sys.executable, script, *common, "--epochs=2"], capture_output=True, text=True,
                            check=True)
    assert "Resuming from checkpoint of epoch 1." in second.stdout
    assert "epoch 1/2" not in second.stdout and "epoch 2/2" in second.stdout
