"""PyTorch base class (`model_service.pytorch_model_service`, seed-06 §9.1).

ModelArts requires PyTorch services to override `__init__` and load their model; when they
do not, this class loads `self.model_path` itself: a TorchScript file, else a whole pickled
`torch.nn.Module`. `_inference` calls the model with the single value (or the keyword
arguments) `_preprocess` returned, without gradients, and returns `{"output": result}`
unless the model already returns a dict.
"""
from __future__ import annotations

from .model_service import SingleNodeService


def load_torch_module(path: str):
    """A TorchScript archive, else a pickled nn.Module, on the CPU, in eval mode."""
    import torch

    try:
        module = torch.jit.load(path, map_location="cpu")
    except (RuntimeError, ValueError):
        module = torch.load(path, map_location="cpu", weights_only=False)
        if not isinstance(module, torch.nn.Module):
            raise RuntimeError(f"{path} holds a {type(module).__name__}, not a model: save it with "
                               "torch.jit.save or torch.save(model), or load it in __init__") from None
    module.eval()
    return module


class PTServingBaseService(SingleNodeService):
    model = None

    def __init__(self, model_name=None, model_path=None):
        super().__init__(model_name, model_path)
        if self.model_path:
            self.model = load_torch_module(self.model_path)

    def _inference(self, data):
        import torch

        if self.model is None:
            raise RuntimeError("no model loaded: set self.model in __init__")
        with torch.no_grad():
            if isinstance(data, dict) and len(data) == 1:
                result = self.model(next(iter(data.values())))
            elif isinstance(data, dict):
                result = self.model(**data)
            else:
                result = self.model(data)
        return result if isinstance(result, dict) else {"output": result}


# The ModelArts FAQ spells the class this way (seed-06 §8.5).
PTServiceBaseService = PTServingBaseService
