"""Loaded by Python at start-up on CPU training nodes (the launcher puts this folder on PYTHONPATH).

Code written for GPUs asks torch.distributed for the "nccl" backend, which needs CUDA. On a
node without GPUs this wraps `init_process_group` so "nccl" is served by "gloo" instead and
says so in the log; everything else is untouched. Set MA_NCCL_CPU_FALLBACK=0 to turn it off.
Nothing is imported until the program itself imports torch.distributed.
"""
import functools
import importlib.abc
import importlib.util
import sys

_TARGET = "torch.distributed.distributed_c10d"


def _patch(module) -> None:
    original = module.init_process_group

    @functools.wraps(original)
    def init_process_group(*args, **kwargs):
        import torch

        backend = kwargs.get("backend", args[0] if args else None)
        if isinstance(backend, str) and backend.lower() == "nccl" and not torch.cuda.is_available():
            print("[atelier] torch.distributed: this node has no GPU; using the gloo backend instead of nccl.",
                  flush=True)
            if "backend" in kwargs:
                kwargs["backend"] = "gloo"
            else:
                args = ("gloo", *args[1:])
        return original(*args, **kwargs)

    module.init_process_group = init_process_group


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _TARGET:
            return None
        sys.meta_path.remove(self)  # one patch is enough; also keeps find_spec below from recursing
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        exec_module = spec.loader.exec_module

        def patched_exec(module):
            exec_module(module)
            _patch(module)

        spec.loader.exec_module = patched_exec
        return spec


sys.meta_path.insert(0, _Finder())
