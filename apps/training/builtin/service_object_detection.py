"""Inference code of an Atelier object-detection model package (runtime atelier-torch-detection).

model.pt is TorchScript: pixels 0–1 [N, 3, S, S] → (boxes [N, K, 4] as x1, y1, x2, y2 in input
pixels, scores [N, K], labels [N, K]). config.json gives `labels`, `input_size` and
`score_threshold`.
Request: multipart/form-data with image files (any field name), or JSON {"images": "<base64>"}.
Response (ModelArts object detection): {"detection_classes": [...], "detection_boxes":
[[ymin, xmin, ymax, xmax], ...] in the original image's pixels, "detection_scores": [...]}, or
{"results": [...]} with one such object per image when several are sent.
"""
import base64
import io
import json
import os

import numpy as np
import torch

try:
    from model_service.pytorch_model_service import PTServingBaseService
except ImportError:  # used outside the model server (tests, scripts)
    PTServingBaseService = object

_HERE = os.path.dirname(os.path.abspath(__file__))


class ObjectDetectionService(PTServingBaseService):
    def __init__(self, model_name="", model_path=""):
        self.model_name = model_name
        folder = model_path if os.path.isdir(model_path or "") else (os.path.dirname(model_path) if model_path
                                                                     else _HERE)
        self.model_path = folder
        with open(os.path.join(folder, "config.json")) as fh:
            self.config = json.load(fh)
        self.labels = self.config["labels"]
        _, self.height, self.width = self.config["input_size"]
        self.score_threshold = float(self.config.get("score_threshold", 0.3))
        self.model = torch.jit.load(os.path.join(folder, "model.pt"), map_location="cpu")
        self.model.eval()

    def _preprocess(self, data):
        from PIL import Image

        images = []
        for field, value in data.items():
            if isinstance(value, dict):  # multipart: {field: {file_name: file}}
                files = list(value.items())
            elif isinstance(value, str):  # JSON: base64 text
                files = [(field, io.BytesIO(base64.b64decode(value.split(",", 1)[-1])))]
            else:
                files = [(field, value)]
            for name, file in files:
                raw = file.read() if hasattr(file, "read") else file
                image = Image.open(io.BytesIO(raw)).convert("RGB")
                original = image.size
                image = image.resize((self.width, self.height), Image.BILINEAR)
                array = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
                images.append((name, original, torch.from_numpy(array.copy())))
        if not images:
            raise ValueError("send at least one image")
        return images

    def _inference(self, data):
        with torch.no_grad():
            boxes, scores, labels = self.model(torch.stack([tensor for _, _, tensor in data]))
        return [(name, original, boxes[i], scores[i], labels[i]) for i, (name, original, _) in enumerate(data)]

    def _postprocess(self, data):
        results = []
        for name, (width, height), boxes, scores, labels in data:
            sx, sy = width / self.width, height / self.height
            found = {"detection_classes": [], "detection_boxes": [], "detection_scores": []}
            for box, score, label in zip(boxes.tolist(), scores.tolist(), labels.tolist()):
                if score < self.score_threshold:
                    continue
                x1, y1, x2, y2 = (max(0.0, v) for v in box)
                found["detection_classes"].append(self.labels[int(label)])
                found["detection_boxes"].append([round(min(y1 * sy, height), 2), round(min(x1 * sx, width), 2),
                                                 round(min(y2 * sy, height), 2), round(min(x2 * sx, width), 2)])
                found["detection_scores"].append(round(float(score), 6))
            results.append((name, found))
        if len(results) == 1:
            return results[0][1]
        return {"results": [{"file": name, **found} for name, found in results]}

    def predict(self, data):
        """Convenience: the whole pipeline in one call."""
        return self._postprocess(self._inference(self._preprocess(data)))
