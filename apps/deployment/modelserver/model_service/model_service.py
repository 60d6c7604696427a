"""The base of every inference service class, and the error a model raises to refuse input.

Contract (seed-06 §9):

* `__init__(self, model_name, model_path)` for deep-learning engines, `__init__(self, model_path)`
  for machine-learning engines. The server sets `self.model_name` and `self.model_path` *before*
  calling `__init__`, so a subclass that never calls `super().__init__` still has them.
  `model_path` is the model directory for TensorFlow/Caffe/MXNet and the model file for
  PyTorch/Scikit_Learn/XGBoost/MindSpore (`os.path.dirname(self.model_path)` gives the folder).
* `_preprocess(data)`: `data` is the parsed JSON body (a dict) or, for multipart requests,
  `{field: {file_name: file_object}}` (plain form fields arrive as `{field: text}`).
* `_inference(data)`: the model call; `_postprocess(data)`: a JSON-serialisable result.
* Raise `InputError` (or any exception inside `_preprocess`) to refuse a payload: the caller
  gets HTTP 400 with the message. Exceptions elsewhere answer 500 with the message.
* Background loading: a service that loads its model in a thread sets `self.ready = False`
  until it is done; the server's health endpoints answer "not ready" meanwhile.
* Streaming (Atelier extension): define `_stream(self, data)` yielding JSON-serialisable items
  to answer `Accept: text/event-stream` requests event by event.
"""
from __future__ import annotations

import logging

logger = logging.getLogger("model_service")


class InputError(ValueError):
    """The request's payload is not something this model accepts; the message tells the caller why."""


class BaseService:
    """Identity pipeline: subclasses override the steps they need."""

    model_name: str | None = None
    model_path: str | None = None

    def __init__(self, model_name: str | None = None, model_path: str | None = None):
        if model_name is not None:
            self.model_name = model_name
        if model_path is not None:
            self.model_path = model_path

    def _preprocess(self, data):
        return data

    def _inference(self, data):
        return data

    def _postprocess(self, data):
        return data

    def inference(self, data):
        """The whole pipeline for one request."""
        return self._postprocess(self._inference(self._preprocess(data)))


class SingleNodeService(BaseService):
    """The generic parent (MindSpore and custom engines): the user's code does the model call."""
