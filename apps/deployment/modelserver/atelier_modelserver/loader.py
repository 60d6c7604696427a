"""Load a model package: read config.json, import customize_service.py, build the service object."""
from __future__ import annotations

import importlib
import inspect
import os
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path

from model_service.model_service import BaseService

from .config import FILE_PATH_TYPES, ML_TYPES, ConfigError, package_check_dir
from .runtimes import BUILTIN_SERVICES


class PackageError(RuntimeError):
    """The package cannot be served; the message says what to fix."""


@dataclass
class LoadedModel:
    """The served model: its config and service object, and whether loading has finished."""

    name: str
    version: str
    package_dir: Path
    config: dict = field(default_factory=dict)
    service: BaseService | None = None
    error: str = ""
    loaded: threading.Event = field(default_factory=threading.Event)

    @property
    def ready(self) -> bool:
        if not self.loaded.is_set() or self.service is None:
            return False
        flag = getattr(self.service, "ready", True)
        return bool(flag() if callable(flag) else flag)

    @property
    def api(self) -> dict:
        apis = self.config.get("apis") or []
        return apis[0] if apis else {"url": "/", "method": "POST", "request": {"Content-type": "application/json"}}


def package_root(path: str | os.PathLike) -> Path:
    """The directory holding `model/`: `path` itself, or its parent when `path` is the model folder."""
    root = Path(path).resolve()
    if (root / "model").is_dir():
        return root
    if root.name == "model" and (root / "config.json").is_file():
        return root.parent
    raise PackageError(f"{root} holds no model/ folder with config.json")


def _service_class(module) -> type[BaseService]:
    """The one BaseService subclass defined in the module (the most derived when there are several)."""
    found = [obj for obj in vars(module).values()
             if inspect.isclass(obj) and issubclass(obj, BaseService) and obj.__module__ == module.__name__]
    if not found:
        raise PackageError("customize_service.py defines no subclass of a model_service base class "
                           "(SingleNodeService, PTServingBaseService, TfServingBaseService)")
    leaves = [cls for cls in found if not any(other is not cls and issubclass(other, cls) for other in found)]
    if len(leaves) > 1:
        raise PackageError(f"customize_service.py defines {len(leaves)} service classes "
                           f"({', '.join(c.__name__ for c in leaves)}); keep one")
    return leaves[0]


def _constructor_args(cls, model_type: str, name: str, model_path: str) -> tuple:
    try:
        params = [p for p in inspect.signature(cls.__init__).parameters.values() if p.name != "self"]
    except (TypeError, ValueError):
        params = []
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return (model_path,) if model_type in ML_TYPES else (name, model_path)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    if len(positional) >= 2:
        return name, model_path
    if len(positional) == 1:
        return (model_path,)
    return ()


def model_load(model: LoadedModel) -> None:
    """Build the service object (in the calling thread); records `error` instead of raising."""
    try:
        report = package_check_dir(model.package_dir)
        if not report.ok:
            raise PackageError("; ".join(f"{f}: {m}" for f, m in report.problems))
        model.config = report.config
        model_dir = model.package_dir / "model"
        model_type = report.config["model_type"]
        model_file = str(model.package_dir / report.model_file) if report.model_file else ""
        model_path = model_file if model_type in FILE_PATH_TYPES and model_file else str(model_dir)
        if report.has_service:
            # The package root makes `model` importable (relative helper imports work); model/ on
            # the path keeps the absolute `import helper` style of older examples working too.
            for entry in (str(model_dir), str(model.package_dir)):
                if entry in sys.path:
                    sys.path.remove(entry)
                sys.path.insert(0, entry)
            # One package per server process; a process that loads another (tests) must not reuse it.
            for name in [n for n in sys.modules if n == "model" or n.startswith("model.")]:
                del sys.modules[name]
            importlib.invalidate_caches()
            module = importlib.import_module("model.customize_service")
            cls = _service_class(module)
        else:
            cls = BUILTIN_SERVICES.get(report.config["runtime"])
            if cls is None:
                raise PackageError(f'runtime "{report.config["runtime"]}" is not built in and the package has no '
                                   "customize_service.py")
        service = cls.__new__(cls)
        # Set before __init__: user classes often never call super().__init__ (seed-06 §9.2).
        service.model_name, service.model_path = model.name, model_path
        service.__init__(*_constructor_args(cls, model_type, model.name, model_path))
        model.service = service
    except ConfigError as exc:
        model.error = f"config.json: {exc}"
    except Exception as exc:  # the instance reports it and exits; the console shows the reason
        model.error = f"{type(exc).__name__}: {exc}"
    finally:
        model.loaded.set()
