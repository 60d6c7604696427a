"""Preset engines: the Python environments a preset-framework job can run in.

Workers run jobs without containers, in the worker's own Python environment, so an engine is
a name for "the worker's Python with these libraries". Its version string follows the
ModelArts scheme `<framework>_<ver>-<cpu|cuda_ver>-py_<ver>-<arch>` and is computed from what
the console has installed (workers run the same installation).
"""
from __future__ import annotations

import functools
import importlib.metadata
import platform
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Engine:
    key: str
    label: str
    package: str  # distribution whose version names the engine; "" = Python itself

    @property
    def version(self) -> str:
        return _version_string(self.key, self.package)


ENGINES = [
    Engine("pytorch", "PyTorch", "torch"),
    Engine("scikit_learn", "Scikit-learn", "scikit-learn"),
    Engine("python", "Python", ""),
]
ENGINE_BY_KEY = {engine.key: engine for engine in ENGINES}


@functools.cache
def _version_string(key: str, package: str) -> str:
    py = f"py_{sys.version_info.major}.{sys.version_info.minor}"
    arch = platform.machine() or "x86_64"
    if not package:
        return f"python_{platform.python_version()}-{py}-{arch}"
    try:
        version = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return ""
    accel = "cpu"
    if package == "torch":
        base, _, local = version.partition("+")
        version = base
        accel = "cpu" if local in ("", "cpu") else local.replace("cu", "cuda_", 1)
    return f"{key}_{version}-{accel}-{py}-{arch}"


def engine_choices() -> list[tuple[str, str]]:
    """(key, "Label (version)") of engines installed here."""
    return [(e.key, f"{e.label} ({e.version})") for e in ENGINES if e.version]
