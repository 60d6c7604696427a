"""Runtime environments for packages with pip dependencies, cached by content hash.

An environment is a virtualenv that sees the base interpreter's packages
(`--system-site-packages`, so torch or scikit-learn are not installed again) plus the
package's `dependencies`. It lives at `<root>/<hash>/`, where the hash covers the base
interpreter and the requirement list, so every package with the same dependencies shares one
environment ("Use cached env image"). A finished build writes `<root>/<hash>/.complete`;
concurrent builders of the same hash wait on a lock file instead of building twice.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path


@dataclass
class BuildResult:
    python: str  # interpreter to run the model server with
    cached: bool  # True when an earlier build was reused
    log: str  # pip's output (empty when cached)


class BuildError(RuntimeError):
    """pip failed or ran past the time limit; `log` holds its output."""

    def __init__(self, message: str, log: str = ""):
        super().__init__(message)
        self.log = log


def env_hash(specs: list[str], base_python: str | None = None) -> str:
    base = base_python or sys.executable
    raw = json.dumps({"python": os.path.realpath(base), "version": sys.version, "requirements": sorted(specs)})
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


def env_python(root: str | os.PathLike, specs: list[str]) -> Path:
    return Path(root) / env_hash(specs) / "bin" / "python"


def env_build(root: str | os.PathLike, specs: list[str], *, timeout: float, pip_args: list[str] | None = None) -> BuildResult:
    """Return a ready environment for `specs`, building it when no finished one exists."""
    target = Path(root) / env_hash(specs)
    target.parent.mkdir(parents=True, exist_ok=True)
    python = target / "bin" / "python"
    lock_path = target.parent / f"{target.name}.lock"
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (target / ".complete").exists():
            return BuildResult(str(python), True, "")
        shutil.rmtree(target, ignore_errors=True)
        started = time.monotonic()
        log = []
        try:
            made = subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(target)],
                                  capture_output=True, text=True, timeout=timeout)
            log.append(made.stdout + made.stderr)
            if made.returncode != 0:
                raise BuildError(f"creating the environment failed (exit code {made.returncode})", "".join(log))
            remaining = max(1.0, timeout - (time.monotonic() - started))
            # The base interpreter's pip installs into the new environment (--python needs pip ≥ 22.3).
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-input",
                 "--disable-pip-version-check", *(pip_args or []), *specs],
                capture_output=True, text=True, timeout=remaining,
            )
            log.append(pip.stdout + pip.stderr)
            if pip.returncode != 0:
                raise BuildError(f"pip install failed (exit code {pip.returncode})", "".join(log))
        except subprocess.TimeoutExpired as exc:
            shutil.rmtree(target, ignore_errors=True)
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            raise BuildError(f"the build ran past its {timeout / 60:g}-minute limit", "".join(log) + out) from None
        except BuildError:
            shutil.rmtree(target, ignore_errors=True)
            raise
        (target / ".complete").write_text(json.dumps({"requirements": specs}))
        return BuildResult(str(python), False, "".join(log))
