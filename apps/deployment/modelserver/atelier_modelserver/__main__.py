"""`python -m atelier_modelserver`: serve one model package on a port.

    python -m atelier_modelserver --package DIR [--port 8080] [--name NAME] [--version 0.0.1]

Defaults come from the environment an Atelier run provides: the package from
`ATELIER_INPUT_PACKAGE`, the port from `PORT`, the name and version from `MODEL_NAME` and
`MODEL_VERSION`. A package with pip dependencies is served from a cached environment built
first (see `envbuild`). The model loads in the background; `/health` answers 503 until it is
ready. If loading fails the server prints `Model load failed: <reason>` and exits with code 3.
Every `MODEL_SERVER_METRIC_SECONDS` (60) it prints its CPU, memory and GPU use as metric lines.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from pathlib import Path

EXIT_LOAD_FAILED = 3
ENV_MARKER = "MODEL_SERVER_ENV_HASH"


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="atelier_modelserver", description="Serve an Atelier model package.")
    parser.add_argument("--package", default=os.environ.get("ATELIER_INPUT_PACKAGE", "."))
    parser.add_argument("--host", default=os.environ.get("MODEL_SERVER_HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8080")))
    parser.add_argument("--name", default=os.environ.get("MODEL_NAME", "model"))
    parser.add_argument("--version", default=os.environ.get("MODEL_VERSION", "0.0.1"))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("MODEL_SERVER_THREADS", "1")))
    parser.add_argument("--env-root", default=os.environ.get("MODEL_SERVER_ENV_ROOT",
                                                             str(Path.home() / ".cache" / "atelier" / "envs")))
    parser.add_argument("--build-timeout", type=float, default=float(os.environ.get("MODEL_SERVER_BUILD_TIMEOUT", "1800")))
    parser.add_argument("--pip-args", default=os.environ.get("MODEL_SERVER_PIP_ARGS", "[]"),
                        help="JSON list of extra pip arguments (index URLs)")
    return parser.parse_args(argv)


def _say(message: str, *, stamp: bool = True) -> None:
    # Timestamped like the logging lines, so the service's Logs tab can place them in time;
    # ATELIER_METRIC lines stay bare (the run engine reads them at the start of a line).
    if stamp:
        message = f"{time.strftime('%Y-%m-%d %H:%M:%S')} INFO atelier_modelserver: {message}"
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def _ensure_environment(args, argv: list[str]) -> None:
    """Re-execute inside the package's dependency environment when it has dependencies."""
    from .config import dependency_specs, package_check_dir
    from .envbuild import BuildError, env_build, env_hash
    from .loader import package_root

    root = package_root(args.package)
    report = package_check_dir(root)
    specs = dependency_specs(report.config) if report.ok else []
    if not specs or os.environ.get(ENV_MARKER) == env_hash(specs):
        return
    _say(f"Preparing the runtime environment for {', '.join(specs)}")
    try:
        result = env_build(args.env_root, specs, timeout=args.build_timeout, pip_args=json.loads(args.pip_args))
    except BuildError as exc:
        _say(exc.log)
        _say(f"Model load failed: building the runtime environment failed: {exc}")
        sys.exit(EXIT_LOAD_FAILED)
    _say("Use cached env image." if result.cached else result.log)
    env = dict(os.environ, **{ENV_MARKER: env_hash(specs)})
    os.execve(result.python, [result.python, "-m", "atelier_modelserver", *argv], env)


def _gpu_usage() -> list[tuple[str, float]]:
    """gpu_util and gpu_mem_usage (%), averaged over the GPUs this run was given; [] without any."""
    import shutil
    import subprocess

    visible = [g for g in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if g.strip()]
    if not visible or shutil.which("nvidia-smi") is None:
        return []
    try:
        out = subprocess.run(["nvidia-smi", f"--id={','.join(visible)}", "--query-gpu=utilization.gpu,memory.used,"
                              "memory.total", "--format=csv,noheader,nounits"], capture_output=True, text=True,
                             timeout=10, check=True).stdout
        rows = [[float(v) for v in line.split(",")] for line in out.strip().splitlines() if line.strip()]
    except (OSError, subprocess.SubprocessError, ValueError):
        return []
    if not rows:
        return []
    return [("gpu_util", sum(r[0] for r in rows) / len(rows)),
            ("gpu_mem_usage", sum(100 * r[1] / r[2] for r in rows if r[2]) / len(rows))]


def _report_metrics(every: float) -> None:
    """Print cpu_usage, mem_usage and, with GPUs, gpu_util and gpu_mem_usage (%) as ATELIER_METRIC lines."""
    try:
        import psutil
    except ImportError:
        return
    process = psutil.Process()
    process.cpu_percent(None)
    stop = threading.Event()
    while not stop.wait(every):
        cpu = process.cpu_percent(None) / (psutil.cpu_count() or 1)
        for name, value in (("cpu_usage", cpu), ("mem_usage", process.memory_percent()), *_gpu_usage()):
            _say("ATELIER_METRIC " + json.dumps({"name": name, "value": round(value, 3)}), stamp=False)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = _parse(argv)
    # User code logs at WARNING by default (seed-06 §9.4); our own lines go to stdout at INFO.
    logging.basicConfig(level=os.environ.get("MODEL_SERVER_LOG_LEVEL", "WARNING"), stream=sys.stdout,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("atelier_modelserver").setLevel(logging.INFO)
    _ensure_environment(args, argv)

    import uvicorn

    from .app import build_app
    from .loader import LoadedModel, model_load, package_root

    model = LoadedModel(name=args.name, version=args.version, package_dir=package_root(args.package))

    def load() -> None:
        model_load(model)
        if model.error:
            _say(f"Model load failed: {model.error}")
            os._exit(EXIT_LOAD_FAILED)  # the run engine records the failure and restarts per policy
        _say(f"Model {model.name} {model.version} loaded from {model.package_dir}")

    threading.Thread(target=load, name="model-load", daemon=True).start()
    every = float(os.environ.get("MODEL_SERVER_METRIC_SECONDS", "60"))
    if every > 0:
        threading.Thread(target=_report_metrics, args=(every,), name="metrics", daemon=True).start()
    _say(f"Serving {model.name} {model.version} on {args.host}:{args.port}")
    # A keep-alive longer than the gateway's pool expiry (30 s): the gateway, not the server,
    # closes idle connections, so a request never meets a connection closing under it.
    uvicorn.run(build_app(model, threads=args.threads), host=args.host, port=args.port, log_level="warning",
                access_log=False, timeout_keep_alive=75, lifespan="off")


if __name__ == "__main__":
    main()
