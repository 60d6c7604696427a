"""Inference code of an Atelier tabular model package (runtime atelier-sklearn-tabular).

model.joblib holds a fitted FLAML AutoML object; config.json lists the feature columns in order.
Request: {"data": {"req_data": [{feature: value, ...}, ...]}} (also {"req_data": [...]}); values
may be numbers or text (text columns were categories in training).
Response: {"data": {"resp_data": [{"predict_result": ..., "scores": {class: probability}}]}}
(scores for classification only).
"""
import json
import os

try:
    from model_service.model_service import InputError, SingleNodeService
except ImportError:  # used outside the model server (tests, scripts)
    SingleNodeService = object

    class InputError(ValueError):
        pass


class TabularService(SingleNodeService):
    def __init__(self, model_path):
        import joblib

        self.model_path = model_path
        folder = model_path if os.path.isdir(model_path) else os.path.dirname(model_path)
        with open(os.path.join(folder, "config.json")) as fh:
            self.config = json.load(fh)
        self.features = list(self.config["features"])
        self.classification = self.config.get("task") == "classification"
        self.model = joblib.load(os.path.join(folder, "model.joblib"))

    def _preprocess(self, data):
        import pandas as pd

        if isinstance(data, dict) and isinstance(data.get("data"), dict) and "req_data" in data["data"]:
            records = data["data"]["req_data"]
        elif isinstance(data, dict) and "req_data" in data:
            records = data["req_data"]
        else:
            raise InputError('send {"data": {"req_data": [{feature: value, ...}]}}')
        if not isinstance(records, list) or not records:
            raise InputError("req_data must be a non-empty list of records")
        rows = []
        for index, record in enumerate(records):
            if not isinstance(record, dict):
                raise InputError(f"record {index} must be an object of feature values")
            missing = [name for name in self.features if name not in record]
            if missing:
                raise InputError(f"record {index} has no value for feature {missing[0]!r}; expected "
                                 f"{', '.join(self.features)}")
            rows.append([record[name] for name in self.features])
        return pd.DataFrame(rows, columns=self.features)

    def _inference(self, data):
        predictions = list(self.model.predict(data))
        probabilities = self.model.predict_proba(data).tolist() if self.classification else None
        return predictions, probabilities

    def _postprocess(self, data):
        predictions, probabilities = data
        classes = [c.item() if hasattr(c, "item") else c for c in getattr(self.model, "classes_", [])]
        results = []
        for row, prediction in enumerate(predictions):
            item = {"predict_result": prediction.item() if hasattr(prediction, "item") else prediction}
            if probabilities is not None:
                item["scores"] = {str(c): round(float(p), 6) for c, p in zip(classes, probabilities[row])}
            results.append(item)
        return {"data": {"resp_data": results}}

    def predict(self, data):
        """Convenience: the whole pipeline in one call."""
        return self._postprocess(self._inference(self._preprocess(data)))
