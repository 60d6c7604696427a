"""Inference code of an Atelier image-classification model package (runtime atelier-torch-image-classification).

Request: multipart/form-data with image files (any field name), or JSON {"images": "<base64>"}.
Response: {"predicted_label": "...", "scores": [["label", probability], ...]} for one image, or
{"results": [...]} with one such object per image when several are sent.
"""
import base64
import importlib.util
import io
import json
import os

import torch

try:
    from model_service.pytorch_model_service import PTServingBaseService
except ImportError:  # used outside the model server (tests, scripts)
    PTServingBaseService = object

_HERE = os.path.dirname(os.path.abspath(__file__))


def _load_network():
    spec = importlib.util.spec_from_file_location("atelier_image_net", os.path.join(_HERE, "image_net.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ImageClassificationService(PTServingBaseService):
    def __init__(self, model_name="", model_path=""):
        self.model_name = model_name
        folder = model_path if os.path.isdir(model_path or "") else (os.path.dirname(model_path) if model_path
                                                                     else _HERE)
        self.model_path = folder
        with open(os.path.join(folder, "config.json")) as fh:
            self.config = json.load(fh)["atelier"]
        self.labels = self.config["labels"]
        self.net = _load_network()
        self.model = self.net.ImageNet(len(self.labels), width=self.config["width"])
        self.model.load_state_dict(torch.load(os.path.join(folder, self.config["weights"]), map_location="cpu"))
        self.model.eval()

    def _preprocess(self, data):
        from PIL import Image

        images = []
        for value in data.values():
            if isinstance(value, dict):  # multipart: {field: {file_name: file}}
                files = value.values()
            elif isinstance(value, str):  # JSON: base64 text
                files = [io.BytesIO(base64.b64decode(value))]
            else:
                files = [value]
            for file in files:
                raw = file.read() if hasattr(file, "read") else file
                images.append(self.net.to_tensor(Image.open(io.BytesIO(raw)), self.config["image_size"]))
        if not images:
            raise ValueError("send at least one image")
        return torch.stack(images)

    def _inference(self, data):
        with torch.no_grad():
            return torch.softmax(self.model(data), dim=1)

    def _postprocess(self, data):
        results = []
        for row in data.tolist():
            ranked = sorted(zip(self.labels, row), key=lambda pair: -pair[1])
            results.append({"predicted_label": ranked[0][0], "scores": [[label, round(p, 6)] for label, p in ranked]})
        return results[0] if len(results) == 1 else {"results": results}

    def predict(self, data):
        """Convenience: the whole pipeline in one call."""
        return self._postprocess(self._inference(self._preprocess(data)))
