"""PyTorch base class (`model_service.pytorch_model_service`, seed-06 §9.1).

ModelArts requires PyTorch services to override `__init__` and load their model; when they
do not, this class loads `self.model_path` itself: a TorchScript file, else a whole pickled
`torch.nn.Module`. `_inference` calls the model with the single value (or the keyword
arguments) `_preprocess` returned, without gradients, and returns `{"output": result}`
unless the model already returns a dict.
"""
from __future__ import annotations

from .model_service import SingleNodeService


def torch_device() -> str:
    """"cuda" when the run was given a GPU (CUDA_VISIBLE_DEVICES) and torch sees it, else "cpu"."""
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load_torch_module(path: str):
    """A TorchScript archive, else a pickled nn.Module, on the run's device, in eval mode."""
    import torch

    device = torch_device()
    try:
        module = torch.jit.load(path, map_location=device)
    except (RuntimeError, ValueError):
        module = torch.load(path, map_location=device, weights_only=False)
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
            if isinstance(data, dict):
                data = {k: v.to(torch_device()) if hasattr(v, "to") else v for k, v in data.items()}
            if isinstance(data, dict) and len(data) == 1:
                result = self.model(next(iter(data.values())))
            elif isinstance(data, dict):
                result = self.model(**data)
            else:
                result = self.model(data)
        return result if isinstance(result, dict) else {"output": result}


# The ModelArts FAQ spells the class this way (seed-06 §8.5).
PTServiceBaseService = PTServingBaseService
