"""Built-in tabular algorithm (FLAML with a time budget) on generated tables, and its model package served.

Classification runs as a real training job on a worker: 600 rows, 6 features, 3 well-separated
classes (scikit-learn's make_classification, class_sep=2.0) with text labels; stated quality:
held-out accuracy ≥ 0.9 within a 10 s search. Regression runs the script directly: 800 rows,
y = 3·x0 − 2·x1 + 0.5·x2² + small noise; stated quality: held-out R² ≥ 0.9 within 10 s.
"""
from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from apps.training.choices import TrainingStatus
from apps.training.launch_spec import BUILTIN_DIR
from apps.training.services import training_job_create

from .conftest import job_log, put, read, wait_job

pytestmark = [pytest.mark.slow]

MODELSERVER = Path(__file__).resolve().parents[2] / "apps" / "deployment" / "modelserver"
SCRIPT = str(BUILTIN_DIR / "tabular.py")

# Loads a package with the model server's own loader (in a fresh process: it imports `model.*`).
SERVE = """
import json, sys
sys.path.insert(0, sys.argv[1])
from atelier_modelserver.loader import LoadedModel, model_load, package_root
model = LoadedModel(name="tabular", version="0.0.1", package_dir=package_root(sys.argv[2]))
model_load(model)
if model.error:
    raise SystemExit(model.error)
print(json.dumps(model.service.inference(json.loads(sys.argv[3]))))
"""


def _classification_csv() -> tuple[bytes, pd.DataFrame]:
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=600, n_features=6, n_informative=4, n_redundant=0, n_classes=3,
                               n_clusters_per_class=1, class_sep=2.0, random_state=0)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(6)])
    frame["species"] = np.array(["setosa", "versicolor", "virginica"])[y]
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode(), frame


def _serve(package: Path, request: dict) -> dict:
    done = subprocess.run([sys.executable, "-c", SERVE, str(MODELSERVER), str(package), json.dumps(request)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_tabular_classification_job_reaches_90_percent_and_serves(training_worker, owner, workspace, bucket,
                                                                  local_pool, cpu_flavor, tmp_path):
    training_worker()
    csv, frame = _classification_csv()
    put("storage://train-data/flowers/table.csv", csv)

    job = training_job_create(
        user=owner, workspace=workspace, name="flowers", pool=local_pool, flavor=cpu_flavor, experiment="none",
        boot_mode="builtin", builtin="tabular",
        inputs=[{"name": "data_url", "uri": "storage://train-data/flowers"}],
        outputs=[{"name": "train_url", "uri": "storage://train-data/flowers-model"}],
        hyperparameters={"label_column": "species", "time_budget": 10},
    )
    job = wait_job(job, TrainingStatus.COMPLETED, timeout=240)

    report = json.loads(read("storage://train-data/flowers-model/eval_result.json"))
    assert report["task"] == "classification" and report["task_type"] == "tabular_classification"
    assert report["accuracy"] >= 0.9
    assert report["labels"] == ["setosa", "versicolor", "virginica"]
    assert [c["label"] for c in report["per_class"]] == ["setosa", "versicolor", "virginica"]
    assert report["rows_train"] == 480 and report["rows_eval"] == 120
    assert sum(map(sum, report["confusion_matrix"])) == 120
    assert report["features"] == [f"f{i}" for i in range(6)]
    assert any(line.startswith("600 rows, 6 features; task classification") for line in job_log(job))

    config = json.loads(read("storage://train-data/flowers-model/model/config.json"))
    assert config["runtime"] == "atelier-sklearn-tabular" and config["model_type"] == "Scikit_Learn"
    assert config["features"] == [f"f{i}" for i in range(6)]
    assert config["metrics"]["accuracy"] == report["accuracy"]

    package = tmp_path / "package" / "model"
    package.mkdir(parents=True)
    for name in ("config.json", "customize_service.py", "model.joblib"):
        (package / name).write_bytes(read(f"storage://train-data/flowers-model/model/{name}"))
    rows = frame.drop(columns=["species"])
    request = {"data": {"req_data": rows.iloc[:20].to_dict(orient="records")}}
    truth = list(frame["species"].iloc[:20])
    # With its customize_service.py, then with the model server's built-in runtime alone.
    for _ in range(2):
        answer = _serve(package.parent, request)["data"]["resp_data"]
        assert len(answer) == 20
        assert sum(a["predict_result"] == t for a, t in zip(answer, truth)) >= 18
        assert set(answer[0]["scores"]) == {"setosa", "versicolor", "virginica"}
        assert abs(sum(answer[0]["scores"].values()) - 1.0) < 1e-3
        (package / "customize_service.py").unlink(missing_ok=True)


def test_tabular_regression_reaches_r2_090_and_a_restart_keeps_the_package(tmp_path):
    rng = np.random.RandomState(0)
    x = rng.uniform(-2, 2, size=(800, 4))
    frame = pd.DataFrame(x, columns=["a", "b", "c", "d"])
    frame["price"] = 3 * x[:, 0] - 2 * x[:, 1] + 0.5 * x[:, 2] ** 2 + rng.normal(0, 0.2, 800)
    (tmp_path / "data").mkdir()
    frame.to_csv(tmp_path / "data" / "houses.csv", index=False)
    args = [sys.executable, SCRIPT, f"--data_url={tmp_path / 'data'}", f"--train_url={tmp_path / 'out'}",
            "--label_column=price", "--time_budget=10"]

    first = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "eval_result.json").read_text())
    assert report["task"] == "regression" and report["task_type"] == "tabular_regression"
    assert report["r2"] >= 0.9
    assert report["rmse"] == pytest.approx(report["mse"] ** 0.5)
    assert set(report) >= {"mae", "mse", "rmse", "r2"}
    assert "R² " in first.stdout.splitlines()[-1]

    # A restarted attempt finds the finished package in its restored output folder and keeps it.
    package = tmp_path / "out" / "model" / "model.joblib"
    before = package.stat().st_mtime_ns
    again = subprocess.run(args, capture_output=True, text=True, cwd=tmp_path,
                           env={**_env(), "ATELIER_RESTART_COUNT": "1"})
    assert again.returncode == 0, again.stderr[-2000:]
    assert "Restart 1: the model package of the previous attempt is complete; keeping it." in again.stdout
    assert package.stat().st_mtime_ns == before

    # The served package answers exactly what the trained model predicts.
    import joblib

    rows = frame.drop(columns=["price"]).iloc[:5]
    expected = joblib.load(package).predict(rows)
    answer = _serve(tmp_path / "out", {"req_data": rows.to_dict(orient="records")})["data"]["resp_data"]
    assert [a["predict_result"] for a in answer] == pytest.approx(list(expected), rel=1e-9)
    assert "scores" not in answer[0]


def test_tabular_refuses_a_missing_label_column(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "t.csv").write_text("x,y\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    done = subprocess.run([sys.executable, SCRIPT, f"--data_url={tmp_path / 'data'}",
                           f"--train_url={tmp_path / 'out'}", "--label_column=target"], capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1] == "t.csv has no column 'target' (label_column); its columns are x, y."
    assert not (tmp_path / "out").exists()


def _env() -> dict:
    import os

    return dict(os.environ)
