"""Packages shaped like the ones the training section's built-in algorithms write (their own
customize_service.py, runtime markers, dependency lists) pass the package rules and serve from
the model server with no code from the user. Weights here are untrained: only the contract is
under test, not accuracy (the training tests cover that)."""
from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

from apps.deployment.modelserver.atelier_modelserver.config import package_check_dir
from tests.deployment.packages import png

from atelier_modelserver.app import build_app  # noqa: E402  (path set up by tests.deployment.packages)
from atelier_modelserver.loader import LoadedModel, model_load  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient  # noqa: E402

import apps.training.builtin as training  # noqa: E402

BUILTIN = Path(training.__file__).resolve().parent


def serve(root: Path, name: str) -> TestClient:
    model = LoadedModel(name=name, version="0.0.1", package_dir=root)
    model_load(model)
    assert model.error == ""
    return TestClient(build_app(model))


def test_image_classification_package(tmp_path):
    import torch

    from apps.training.builtin.image_net import ImageNet

    model_dir = tmp_path / "cls" / "model"
    model_dir.mkdir(parents=True)
    torch.save(ImageNet(2, width=4).state_dict(), model_dir / "model.pt")
    shutil.copyfile(BUILTIN / "service_image_classification.py", model_dir / "customize_service.py")
    shutil.copyfile(BUILTIN / "image_net.py", model_dir / "image_net.py")
    (model_dir / "config.json").write_text(json.dumps({
        "model_type": "PyTorch", "model_algorithm": "image_classification",
        "runtime": "atelier-torch-image-classification",
        "apis": [{"url": "/", "method": "post", "request": {"Content-type": "multipart/form-data", "data": {
            "type": "object", "properties": {"images": {"type": "file"}}}}}],
        "dependencies": [{"installer": "pip", "packages": [
            {"package_name": "torch", "package_version": "2.0", "restraint": "ATLEAST"},
            {"package_name": "Pillow", "package_version": "", "restraint": ""}]}],
        "atelier": {"labels": ["cat", "dog"], "image_size": 16, "width": 4, "weights": "model.pt",
                    "service_class": "ImageClassificationService"}}))
    report = package_check_dir(tmp_path / "cls")
    assert report.ok and report.model_file == "model/model.pt" and report.has_service
    answer = serve(tmp_path / "cls", "pets").post("/", files={"images": ("a.png", png(200), "image/png")}).json()
    assert answer["predicted_label"] in ("cat", "dog") and [row[0] for row in answer["scores"]] in (
        ["cat", "dog"], ["dog", "cat"])


def test_tabular_package(tmp_path):
    import joblib
    import pandas as pd
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris(as_frame=True)
    frame = iris.data.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))
    model = LogisticRegression(max_iter=500).fit(frame, iris.target)
    model_dir = tmp_path / "tab" / "model"
    model_dir.mkdir(parents=True)
    joblib.dump(model, model_dir / "model.joblib")
    shutil.copyfile(BUILTIN / "service_tabular.py", model_dir / "customize_service.py")
    (model_dir / "config.json").write_text(json.dumps({
        "model_type": "Scikit_Learn", "model_algorithm": "predict_analysis", "runtime": "atelier-sklearn-tabular",
        "apis": [{"url": "/", "method": "post", "request": {"Content-type": "application/json"}}],
        "features": list(frame.columns), "task": "classification", "labels": ["0", "1", "2"]}))
    assert package_check_dir(tmp_path / "tab").ok
    record = dict(zip(frame.columns, [6.7, 3.0, 5.2, 2.3]))
    answer = serve(tmp_path / "tab", "iris").post("/", json={"data": {"req_data": [record]}}).json()
    assert answer["data"]["resp_data"][0]["predict_result"] == 2
    assert isinstance(pd.Series(answer["data"]["resp_data"][0]["scores"]).sum(), float)
