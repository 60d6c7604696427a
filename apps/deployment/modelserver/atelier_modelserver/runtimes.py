"""Built-in runtimes: serve the packages Atelier's built-in algorithms write, with no inference code.

A package selects one with `"runtime"` in model/config.json. What each expects in model/:

`atelier-sklearn-tabular` (model_type Scikit_Learn)
    One `.joblib`/`.pkl` file: a fitted estimator or pipeline with `predict` (FLAML's AutoML
    object qualifies). Optional config keys: `features` (column order; else the estimator's
    `feature_names_in_`, else the record's key order) and `labels` (class names for integer
    predictions). Request: `{"data": {"req_data": [{feature: value, …}]}}` (also `{"req_data": …}`).
    Response: `{"data": {"resp_data": [{"predict_result": …, "scores": {label: p}}]}}`.
    V2: input `input` FP32/FP64 [N, F] → outputs `predict` [N] and `probabilities` FP64 [N, C].

`atelier-torch-image-classification` (model_type PyTorch)
    One `.pt`/`.pth` file: TorchScript (or a pickled nn.Module) mapping a float batch
    [N, C, H, W] to logits [N, K]. Config: `labels` (K names), `input_size` ([H, W] or
    [C, H, W]; default [3, 224, 224]; C = 1 means grayscale), `mean`/`std` (per channel,
    applied to pixels scaled to 0–1; defaults 0.5). Request: multipart file field(s) (any
    name, e.g. `images`) or JSON `{"images": "<base64>"}`. Response: `{"predicted_label": …,
    "scores": [[label, p], …]}` (top 5), or `{"results": [...]}` for several images.
    V2: input `images` BYTES [N] (encoded files) or FP32 [N, C, H, W] → `probabilities`
    FP32 [N, K] and `label` INT64 [N].

`atelier-torch-detection` (model_type PyTorch)
    One `.pt`/`.pth` file: TorchScript taking a float batch [N, 3, H, W] (pixels 0–1, resized
    to `input_size` when given, else the image's own size) and returning either a list of dicts
    `{"boxes" [K, 4] (x1, y1, x2, y2 in input pixels), "scores" [K], "labels" [K]}` or a tuple
    (boxes [N, K, 4], scores [N, K], labels [N, K]). Config: `labels`, optional `input_size`,
    `score_threshold` (default 0.5). Response (ModelArts object detection): `{"detection_classes":
    [...], "detection_boxes": [[ymin, xmin, ymax, xmax], …] in original image pixels,
    "detection_scores": [...]}`. V2: input `images` BYTES [N] → `detections` BYTES [N] (JSON).
"""
from __future__ import annotations

import base64
import binascii
import io
import json
import os

import numpy as np

from model_service.model_service import InputError, SingleNodeService
from model_service.pytorch_model_service import load_torch_module, torch_device

TOP_K = 5


def _image_payloads(data) -> list[tuple[str, bytes]]:
    """(name, bytes) of every image in a multipart or JSON request, in field order."""
    images: list[tuple[str, bytes]] = []
    if not isinstance(data, dict) or not data:
        raise InputError("send an image: a multipart file field (e.g. images=@cat.jpg) or "
                         'JSON {"images": "<base64>"}')
    for field, value in data.items():
        if isinstance(value, dict):
            for name, handle in value.items():
                raw = handle.read() if hasattr(handle, "read") else handle
                if not isinstance(raw, (bytes, bytearray)):
                    raise InputError(f"field {field}: {name} is not a file")
                images.append((name, bytes(raw)))
        elif isinstance(value, (str, list)) and field not in ("meta",):
            for index, text in enumerate(value if isinstance(value, list) else [value]):
                if not isinstance(text, str):
                    raise InputError(f"field {field}: item {index} is not base64 text")
                try:
                    images.append((f"{field}[{index}]", base64.b64decode(text.split(",", 1)[-1], validate=True)))
                except (binascii.Error, ValueError):
                    raise InputError(f"field {field}: item {index} is not valid base64") from None
    if not images:
        raise InputError("the request holds no image")
    return images


def _open_image(name: str, raw: bytes, mode: str):
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(raw))
        image.load()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"{name} is not an image this model can read ({exc})") from None
    return image.convert(mode)


class _ConfigMixin:
    def _load_config(self) -> dict:
        folder = os.path.dirname(os.path.realpath(self.model_path))
        try:
            with open(os.path.join(folder, "config.json"), encoding="utf-8-sig") as handle:
                return json.load(handle)
        except (OSError, ValueError):
            return {}


class SklearnTabularService(_ConfigMixin, SingleNodeService):
    """Tabular classification/regression with a pickled scikit-learn-compatible estimator."""

    def __init__(self, model_path):
        import joblib

        self.model_path = model_path
        self.model = joblib.load(model_path)
        config = self._load_config()
        names = getattr(self.model, "feature_names_in_", None)
        self.features = list(config.get("features") or (list(names) if names is not None else []))
        self.labels = list(config.get("labels") or [])

    def _records(self, data) -> list:
        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "req_data" in data["data"]:
            records = data["data"]["req_data"]
        elif isinstance(data, dict) and "req_data" in data:
            records = data["req_data"]
        elif isinstance(data, dict) and "instances" in data:
            records = data["instances"]
        else:
            raise InputError('send {"data": {"req_data": [{feature: value, ...}]}}')
        if not isinstance(records, list) or not records:
            raise InputError("req_data must be a non-empty list of records")
        return records

    def _matrix(self, records: list) -> np.ndarray:
        rows = []
        for index, record in enumerate(records):
            if isinstance(record, dict):
                names = self.features or list(record)
                missing = [name for name in names if name not in record]
                if missing:
                    raise InputError(f"record {index} has no value for feature {missing[0]!r}; expected "
                                     f"{', '.join(names)}")
                values = [record[name] for name in names]
            elif isinstance(record, list):
                values = record
            else:
                raise InputError(f"record {index} must be an object of feature values")
            try:
                rows.append([float(v) for v in values])
            except (TypeError, ValueError):
                raise InputError(f"record {index} has a value that is not a number") from None
        widths = {len(row) for row in rows}
        if len(widths) != 1:
            raise InputError("every record must have the same number of features")
        expected = getattr(self.model, "n_features_in_", None)
        if expected is not None and widths != {expected}:
            raise InputError(f"the model expects {expected} features, got {widths.pop()}")
        return np.asarray(rows, dtype=np.float64)

    def _frame(self, matrix: np.ndarray):
        names = getattr(self.model, "feature_names_in_", None)
        if names is None:
            return matrix
        import pandas as pd

        return pd.DataFrame(matrix, columns=list(names))

    def _predict(self, matrix: np.ndarray):
        frame = self._frame(matrix)
        predictions = np.asarray(self.model.predict(frame))
        probabilities = None
        if hasattr(self.model, "predict_proba"):
            try:
                probabilities = np.asarray(self.model.predict_proba(frame), dtype=np.float64)
            except (AttributeError, NotImplementedError, ValueError):
                probabilities = None
        return predictions, probabilities

    def _label(self, value):
        if self.labels and isinstance(value, (int, np.integer)) and 0 <= int(value) < len(self.labels):
            return self.labels[int(value)]
        return value.item() if isinstance(value, np.generic) else value

    def _preprocess(self, data):
        return self._matrix(self._records(data))

    def _inference(self, data):
        return self._predict(data)

    def _postprocess(self, data):
        predictions, probabilities = data
        classes = [self._label(c) for c in getattr(self.model, "classes_", [])]
        results = []
        for row, prediction in enumerate(predictions):
            item = {"predict_result": self._label(prediction)}
            if probabilities is not None and classes:
                item["scores"] = {str(c): round(float(p), 6) for c, p in zip(classes, probabilities[row])}
            results.append(item)
        return {"data": {"resp_data": results}}

    def v2_metadata(self) -> tuple[list, list]:
        width = len(self.features) or getattr(self.model, "n_features_in_", -1)
        outputs = [{"name": "predict", "datatype": "BYTES" if self.labels else "FP64", "shape": [-1]}]
        if hasattr(self.model, "predict_proba"):
            outputs.append({"name": "probabilities", "datatype": "FP64", "shape": [-1, len(getattr(
                self.model, "classes_", [])) or -1]})
        return [{"name": "input", "datatype": "FP64", "shape": [-1, width]}], outputs

    def v2_infer(self, inputs: dict) -> dict:
        if len(inputs) != 1:
            raise InputError("send one input tensor of shape [N, features]")
        matrix = np.asarray(next(iter(inputs.values())), dtype=np.float64)
        if matrix.ndim == 1:
            matrix = matrix.reshape(1, -1)
        if matrix.ndim != 2:
            raise InputError(f"the input must have shape [N, features], not {list(matrix.shape)}")
        self._matrix(matrix.tolist())  # the same feature-count check as JSON requests
        predictions, probabilities = self._predict(matrix)
        labels = [self._label(p) for p in predictions]
        if all(isinstance(label, str) for label in labels):
            out = {"predict": np.asarray(labels, dtype=object)}
        else:
            out = {"predict": np.asarray(labels, dtype=np.float64 if predictions.dtype.kind == "f" else np.int64)}
        if probabilities is not None:
            out["probabilities"] = probabilities
        return out


class _TorchImageBase(_ConfigMixin, SingleNodeService):
    default_size = (3, 224, 224)

    def __init__(self, model_name, model_path):
        self.model_name, self.model_path = model_name, model_path
        self.model = load_torch_module(model_path)
        config = self._load_config()
        self.labels = [str(label) for label in config.get("labels") or []]
        size = config.get("input_size") or self.default_size
        if len(size) == 2:
            size = [3, *size]
        self.channels, self.height, self.width = (int(v) for v in size)
        self.mean = np.asarray(config.get("mean") or [0.5] * self.channels, dtype=np.float32).reshape(-1, 1, 1)
        self.std = np.asarray(config.get("std") or [0.5] * self.channels, dtype=np.float32).reshape(-1, 1, 1)
        self.score_threshold = float(config.get("score_threshold", 0.5))
        self.resize = bool(config.get("input_size"))

    def _tensor(self, name: str, raw: bytes, *, resize: bool = True) -> tuple[np.ndarray, tuple[int, int]]:
        image = _open_image(name, raw, "L" if self.channels == 1 else "RGB")
        original = image.size  # (width, height)
        if resize:
            image = image.resize((self.width, self.height))
        array = np.asarray(image, dtype=np.float32) / 255.0
        array = array[None, :, :] if array.ndim == 2 else array.transpose(2, 0, 1)
        return array, original

    def _label(self, index: int) -> str:
        return self.labels[index] if 0 <= index < len(self.labels) else str(index)


class TorchImageClassificationService(_TorchImageBase):
    """Image classification with a TorchScript model producing logits."""

    def _preprocess(self, data):
        images = _image_payloads(data)
        batch = np.stack([(self._tensor(name, raw)[0] - self.mean) / self.std for name, raw in images])
        return [name for name, _ in images], batch

    def _forward(self, batch: np.ndarray) -> np.ndarray:
        import torch

        with torch.no_grad():
            logits = self.model(torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(torch_device()))
            return torch.softmax(logits, dim=1).cpu().numpy()

    def _inference(self, data):
        names, batch = data
        return names, self._forward(batch)

    def _postprocess(self, data):
        names, probabilities = data
        results = []
        for name, row in zip(names, probabilities):
            order = np.argsort(-row)[:TOP_K]
            results.append({"predicted_label": self._label(int(order[0])),
                            "scores": [[self._label(int(i)), round(float(row[i]), 6)] for i in order]})
        if len(results) == 1:
            return results[0]
        return {"results": [{"file": name, **result} for name, result in zip(names, results)]}

    def v2_metadata(self) -> tuple[list, list]:
        return ([{"name": "images", "datatype": "BYTES", "shape": [-1]}],
                [{"name": "probabilities", "datatype": "FP32", "shape": [-1, len(self.labels) or -1]},
                 {"name": "label", "datatype": "INT64", "shape": [-1]}])

    def v2_infer(self, inputs: dict) -> dict:
        if len(inputs) != 1:
            raise InputError("send one input: encoded images (BYTES [N]) or pixels (FP32 [N, C, H, W])")
        value = next(iter(inputs.values()))
        if value.dtype == object:
            batch = np.stack([(self._tensor(f"images[{i}]", bytes(raw))[0] - self.mean) / self.std
                              for i, raw in enumerate(value.reshape(-1))])
        else:
            if value.ndim != 4 or value.shape[1:] != (self.channels, self.height, self.width):
                raise InputError(f"pixel input must have shape [N, {self.channels}, {self.height}, "
                                 f"{self.width}], not {list(value.shape)}")
            batch = value
        probabilities = self._forward(batch).astype(np.float32)
        return {"probabilities": probabilities, "label": probabilities.argmax(axis=1).astype(np.int64)}


class TorchDetectionService(_TorchImageBase):
    """Object detection with a TorchScript model returning boxes, scores and labels."""

    def _detect(self, name: str, raw: bytes) -> dict:
        import torch

        array, (width, height) = self._tensor(name, raw, resize=self.resize)
        in_h, in_w = array.shape[1:]
        with torch.no_grad():
            out = self.model(torch.from_numpy(array[None]).to(torch_device()))
        if isinstance(out, (list, tuple)) and out and isinstance(out[0], dict):
            boxes, scores, labels = out[0]["boxes"], out[0]["scores"], out[0]["labels"]
        elif isinstance(out, (list, tuple)) and len(out) == 3:
            boxes, scores, labels = out[0][0], out[1][0], out[2][0]
        else:
            raise RuntimeError("the detection model must return [{boxes, scores, labels}] or "
                               "(boxes, scores, labels)")
        boxes, scores, labels = (np.asarray(t.detach().cpu() if hasattr(t, "detach") else t)
                                 for t in (boxes, scores, labels))
        sx, sy = width / in_w, height / in_h
        result = {"detection_classes": [], "detection_boxes": [], "detection_scores": []}
        for box, score, label in zip(boxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)):
            if float(score) < self.score_threshold:
                continue
            x1, y1, x2, y2 = (float(v) for v in box)
            result["detection_classes"].append(self._label(int(label)))
            result["detection_boxes"].append([round(y1 * sy, 2), round(x1 * sx, 2), round(y2 * sy, 2),
                                              round(x2 * sx, 2)])
            result["detection_scores"].append(round(float(score), 6))
        return result

    def _preprocess(self, data):
        return _image_payloads(data)

    def _inference(self, data):
        return [(name, self._detect(name, raw)) for name, raw in data]

    def _postprocess(self, data):
        if len(data) == 1:
            return data[0][1]
        return {"results": [{"file": name, **result} for name, result in data]}

    def v2_metadata(self) -> tuple[list, list]:
        return ([{"name": "images", "datatype": "BYTES", "shape": [-1]}],
                [{"name": "detections", "datatype": "BYTES", "shape": [-1]}])

    def v2_infer(self, inputs: dict) -> dict:
        value = next(iter(inputs.values())) if len(inputs) == 1 else None
        if value is None or value.dtype != object:
            raise InputError("send one BYTES input holding encoded images")
        found = [json.dumps(self._detect(f"images[{i}]", bytes(raw))) for i, raw in enumerate(value.reshape(-1))]
        return {"detections": np.asarray(found, dtype=object)}


BUILTIN_SERVICES = {
    "atelier-sklearn-tabular": SklearnTabularService,
    "atelier-torch-image-classification": TorchImageClassificationService,
    "atelier-torch-detection": TorchDetectionService,
}
