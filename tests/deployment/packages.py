"""Model packages for the deployment tests: fixture packages copied to a folder, and small real
models (scikit-learn on iris, TorchScript image classifier) trained or built on the spot."""
from __future__ import annotations

import io
import json
import shutil
import sys
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "deployment"
MODELSERVER = Path(__file__).resolve().parents[2] / "apps" / "deployment" / "modelserver"

# The model server's packages import as `atelier_modelserver` / `model_service`, as inside a run.
if str(MODELSERVER) not in sys.path:
    sys.path.insert(0, str(MODELSERVER))


def fixture_package(name: str, target: Path) -> Path:
    """Copy tests/fixtures/deployment/<name> to target/<name>; returns the package root."""
    root = target / name
    shutil.copytree(FIXTURES / name, root)
    return root


def sklearn_package(target: Path, *, with_labels: bool = True) -> Path:
    """A built-in tabular package: logistic regression on iris (features named, labels set)."""
    import joblib
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    iris = load_iris()
    model = LogisticRegression(max_iter=500).fit(iris.data, iris.target)
    root = target / "iris"
    (root / "model").mkdir(parents=True)
    joblib.dump(model, root / "model" / "model.joblib")
    config = {
        "model_type": "Scikit_Learn", "model_algorithm": "predict_analysis", "runtime": "atelier-sklearn-tabular",
        "features": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
        "metrics": {"accuracy": 0.973333},
        "apis": [{"url": "/", "method": "POST",
                  "request": {"Content-type": "application/json",
                              "data": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                                  "req_data": {"type": "array", "items": [{"type": "object", "properties": {
                                      name: {"type": "number"} for name in
                                      ["sepal_length", "sepal_width", "petal_length", "petal_width"]}}]}}}}}},
                  "response": {"Content-type": "application/json",
                               "data": {"type": "object", "properties": {"data": {"type": "object", "properties": {
                                   "resp_data": {"type": "array", "items": [{"type": "object", "properties": {
                                       "predict_result": {"type": "string"}}}]}}}}}}}],
    }
    if with_labels:
        config["labels"] = [str(name) for name in iris.target_names]
    (root / "model" / "config.json").write_text(json.dumps(config))
    return root


def torch_classifier_package(target: Path) -> Path:
    """A built-in image-classification package: TorchScript that calls bright images "light"."""
    import torch

    class Brightness(torch.nn.Module):
        def forward(self, x):
            mean = x.mean(dim=(1, 2, 3))
            return torch.stack([-mean * 10, mean * 10], dim=1)

    root = target / "brightness"
    (root / "model").mkdir(parents=True)
    torch.jit.save(torch.jit.script(Brightness()), str(root / "model" / "model.pt"))
    config = {"model_type": "PyTorch", "model_algorithm": "image_classification",
              "runtime": "atelier-torch-image-classification", "labels": ["dark", "light"],
              "input_size": [3, 8, 8], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5],
              "apis": [{"url": "/", "method": "POST",
                        "request": {"Content-type": "multipart/form-data",
                                    "data": {"type": "object", "properties": {"images": {"type": "file"}}}}}]}
    (root / "model" / "config.json").write_text(json.dumps(config))
    return root


def png(color: int | tuple = 255, size=(16, 12), box: tuple[int, int, int, int] | None = None) -> bytes:
    """A PNG of one colour, optionally with a black rectangle (x1, y1, x2, y2)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, color if isinstance(color, tuple) else (color, color, color))
    if box is not None:
        ImageDraw.Draw(image).rectangle([box[0], box[1], box[2] - 1, box[3] - 1], fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()
