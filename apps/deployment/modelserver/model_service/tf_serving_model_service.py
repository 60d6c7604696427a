"""Alias module: some ModelArts examples import the TensorFlow base class from this name."""
from .tfserving_model_service import TfServingBaseService

__all__ = ["TfServingBaseService"]
