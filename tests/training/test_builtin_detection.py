"""Built-in object detection on generated shapes, evaluated with pycocotools, and its package served.

Data (tests/fixtures/training/shapes.py): 300 images of 64×64 pixels, each with one to three
non-overlapping filled rectangles or circles (two classes, random bright colours, 12–26 px) on
a dark uniform background; 240 train, 60 held out. Stated quality: mAP@0.5 ≥ 0.8 after 8 epochs
at 64 px (about a minute of CPU on an unloaded core).
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from apps.training.choices import TrainingStatus
from apps.training.launch_spec import BUILTIN_DIR
from apps.training.services import training_job_create
from tests.fixtures.training.shapes import CLASSES, shapes_coco

from .conftest import put, read, wait_job

pytestmark = [pytest.mark.slow]

MODELSERVER = Path(__file__).resolve().parents[2] / "apps" / "deployment" / "modelserver"
SCRIPT = str(BUILTIN_DIR / "object_detection.py")

# Loads a package with the model server's own loader in a fresh process and detects one PNG.
SERVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from atelier_modelserver.loader import LoadedModel, model_load, package_root
model = LoadedModel(name="shapes", version="0.0.1", package_dir=package_root(sys.argv[2]))
model_load(model)
if model.error:
    raise SystemExit(model.error)
with open(sys.argv[3], "rb") as fh:
    print(json.dumps(model.service.inference({"images": {"x.png": fh}})))
"""


def _serve(package: Path, image: Path) -> dict:
    done = subprocess.run([sys.executable, "-c", SERVE, str(MODELSERVER), str(package), str(image)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def _iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_detection_job_reaches_map50_080_on_shapes_and_serves(training_worker, owner, workspace, bucket, local_pool,
                                                             cpu_flavor, tmp_path):
    training_worker()
    files = shapes_coco(300, 64, seed=2)
    for rel, data in files.items():
        put(f"storage://train-data/shapes/{rel}", data)

    job = training_job_create(
        user=owner, workspace=workspace, name="shapes", pool=local_pool, flavor=cpu_flavor, experiment="none",
        boot_mode="builtin", builtin="object_detection",
        inputs=[{"name": "data_url", "uri": "storage://train-data/shapes"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/shapes-model"}],
        hyperparameters={"epochs": 8, "image_size": 64, "learning_rate": 0.005},
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=600)

    report = json.loads(read("storage://train-data/shapes-model/eval_result.json"))
    assert report["task_type"] == "object_detection"
    assert report["map50"] >= 0.8
    assert [c["label"] for c in report["per_class"]] == list(CLASSES)
    assert all(c["ap50"] >= 0.6 for c in report["per_class"])
    assert report["images_train"] == 240 and report["images_eval"] == 60
    config = json.loads(read("storage://train-data/shapes-model/model/config.json"))
    assert config["runtime"] == "atelier-torch-detection" and config["model_type"] == "PyTorch"
    assert config["labels"] == list(CLASSES) and config["input_size"] == [3, 64, 64]

    package = tmp_path / "package" / "model"
    package.mkdir(parents=True)
    for name in ("config.json", "customize_service.py", "model.pt"):
        (package / name).write_bytes(read(f"storage://train-data/shapes-model/model/{name}"))
    # A fresh image, upscaled to 128 px: boxes come back in the original image's pixels.
    probe = shapes_coco(1, 64, seed=99)
    truth = json.loads(probe["annotations.json"])["annotations"]
    from PIL import Image

    Image.open(io.BytesIO(probe["images/0000.png"])).resize((128, 128), Image.NEAREST).save(tmp_path / "probe.png")
    expected = [[2 * y, 2 * x, 2 * (y + h), 2 * (x + w)] for x, y, w, h in (t["bbox"] for t in truth)]
    # With its customize_service.py, then with the model server's built-in runtime alone.
    for _ in range(2):
        answer = _serve(package.parent, tmp_path / "probe.png")
        assert set(answer) == {"detection_classes", "detection_boxes", "detection_scores"}
        for box, kind in zip(expected, (CLASSES[t["category_id"] - 1] for t in truth)):
            assert any(_iou(found, box) >= 0.5 and label == kind
                       for found, label in zip(answer["detection_boxes"], answer["detection_classes"])), (box, answer)
        (package / "customize_service.py").unlink(missing_ok=True)


def test_detection_resumes_from_its_checkpoint(tmp_path):
    for rel, data in shapes_coco(24, 32, seed=3).items():
        (tmp_path / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "data" / rel).write_bytes(data)
    args = [sys.executable, SCRIPT, f"--data_url={tmp_path / 'data'}", f"--train_url={tmp_path / 'out'}",
            "--image_size=32", "--epochs=2"]
    first = subprocess.run(args, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "Resuming" not in first.stdout and "epoch 2/2" in first.stdout
    # The attempt died after its last checkpoint, before the package was uploaded: the restart trains no epoch again.
    (tmp_path / "out" / "model" / "model.pt").unlink()
    second = subprocess.run(args, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "Resuming from checkpoint of epoch 2." in second.stdout
    assert "epoch 1/2" not in second.stdout and "epoch 2/2" not in second.stdout
    assert (tmp_path / "out" / "model" / "model.pt").is_file()
    report = json.loads((tmp_path / "out" / "eval_result.json").read_text())
    assert set(report) >= {"map50", "map", "per_class"}


def test_detection_refuses_a_folder_without_coco_annotations(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "notes.json").write_text('{"hello": 1}')
    done = subprocess.run([sys.executable, SCRIPT, f"--data_url={tmp_path / 'data'}",
                           f"--train_url={tmp_path / 'out'}"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == (
        f"No COCO annotation file (a .json with images, annotations, categories) in {tmp_path / 'data'}.")
