"""ModelArts-compatible inference base classes for `customize_service.py`.

    from model_service.pytorch_model_service import PTServingBaseService

    class Service(PTServingBaseService):
        def _preprocess(self, data): ...
        def _postprocess(self, data): ...

The Atelier model server finds the one subclass defined in `customize_service.py`, builds it
with the engine's constructor signature and calls `_preprocess → _inference → _postprocess`
for every request. See `model_service.model_service` for the contract.
"""
from .model_service import BaseService, InputError, SingleNodeService

__all__ = ["BaseService", "InputError", "SingleNodeService"]
