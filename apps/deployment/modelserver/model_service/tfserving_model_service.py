"""TensorFlow SavedModel base class (`model_service.tfserving_model_service`, seed-06 §9.1).

`_inference` feeds the dict returned by `_preprocess` to the SavedModel's only signature (or
`serving_default`), keyed by the signature's input names, and returns a dict keyed by its
output names. TensorFlow is imported on first use, so the class itself needs no TensorFlow.
"""
from __future__ import annotations

import threading

from .model_service import InputError, SingleNodeService


class TfServingBaseService(SingleNodeService):
    _tf_lock = threading.Lock()

    def _signature(self):
        signature = getattr(self, "_tf_signature", None)
        if signature is not None:
            return signature
        with self._tf_lock:
            try:
                import tensorflow as tf
            except ImportError:
                raise RuntimeError("TensorFlow is not installed in this runtime; add it to the model's "
                                   "dependencies or override _inference") from None
            loaded = tf.saved_model.load(self.model_path, tags=["serve"])
            signatures = dict(loaded.signatures)
            if len(signatures) == 1:
                signature = next(iter(signatures.values()))
            elif "serving_default" in signatures:
                signature = signatures["serving_default"]
            else:
                raise RuntimeError(f"the SavedModel has signatures {sorted(signatures)}; keep one or name it "
                                   "serving_default")
            self._tf_model, self._tf_signature = loaded, signature
            return signature

    def _inference(self, data):
        import tensorflow as tf

        signature = self._signature()
        inputs = signature.structured_input_signature[1]
        for key in data:
            if key not in inputs:
                raise InputError(f"input key {key} is not in model inputs {sorted(inputs)}")
        outputs = signature(**{key: tf.convert_to_tensor(value) for key, value in data.items()})
        return {key: value.numpy().tolist() for key, value in outputs.items()}
