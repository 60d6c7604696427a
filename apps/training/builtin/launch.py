"""Atelier training launcher: the first process of every training node (runs inside the run).

Usage (built by apps/training/launch_spec.py): ``python launch.py '<json spec>'``.
Standard library only; it imports nothing from Atelier's console. Steps, each logged with an
``[atelier]`` line; the pipeline steps are also printed as ``ATELIER_EVENT {json}`` lines, which
the run's supervisor records as ``[worker-N]`` job events with their durations
(see apps/runtime/runevents.py):

1. place the code folder (staged by the run engine as input ``code``) at
   ``$MA_JOB_DIR/<last segment of the code path>`` (= ``$WORKSPACE``);
2. empty output folders that were restored only for a restart (first attempt, no pre-download);
3. build the environment: ModelArts variables (MA_*, WORKSPACE), channels acquired as
   environment variables, then the user's variables;
4. pre-check (dns, disk-size root/shm/cache, gpu-check) unless MA_SKIP_IMAGE_DETECT=0;
5. install requirements.txt (or pip-requirement(s).txt / requirement.txt) of the code folder
   into a per-run folder on PYTHONPATH;
6. run the pre-start hook ma-pre-start.sh / ma-pre-start.py next to the boot file;
7. exec the boot file / boot command / built-in algorithm with ``--name=value`` arguments
   (sorted by name) plus ``--init_method --rank --world_size`` on multi-node jobs.

Extra mounts (host folders) are realised as symbolic links at ``$MA_MOUNT_PATH/<mount path>``
pointing to the host folder: a process-based run has no mount namespace, so a link is the
equivalent the code sees at the same path. A custom-command job's run-as uid is applied when
the launcher starts as root (the worker did not already switch users, see ATELIER_RUN_AS_USER):
the run directory is handed to that uid and the process drops to it before exec; otherwise the
uid is reported as not applied and the process keeps the worker's account.

Exit codes of the launcher itself (its own failures, before the code runs): 13 pre-check,
14 requirements, 15 pre-start hook, 16 bad layout (boot file missing).
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REQUIREMENT_FILES = ("pip-requirement.txt", "pip-requirements.txt", "requirement.txt", "requirements.txt")
HOOKS = ("ma-pre-start.sh", "ma-pre-start.py")
EXIT_PRECHECK, EXIT_REQUIREMENTS, EXIT_HOOK, EXIT_LAYOUT = 13, 14, 15, 16


def say(message: str) -> None:
    print(f"[atelier] {message}", flush=True)


def fail(code: int, message: str) -> None:
    print(f"[atelier][ERROR] {message}", flush=True)
    sys.exit(code)


def event(message: str, *, seconds: float | None = None, level: str = "info", clock: str = "") -> None:
    """A pipeline step for the Events tab (the supervisor also logs it as an [atelier] line);
    `clock` "hold" / "start": the job's maximum runtime stops / starts counting (preparation)."""
    record = {"message": message, "level": level}
    if seconds is not None:
        record["seconds"] = round(seconds, 1)
    if clock:
        record["runtime_clock"] = clock
    print("ATELIER_EVENT " + json.dumps(record, ensure_ascii=False), flush=True)


def _free(path: str) -> int:
    try:
        return shutil.disk_usage(path).free
    except OSError:
        return -1


# Soft limits ModelArts requires of nodes on an InfiniBand (RDMA) network, checked as item "ulimit":
# (resource, name in `ulimit -a`, minimum, unit of the minimum; KiB limits are bytes in getrlimit).
ULIMITS = (("RLIMIT_MEMLOCK", "max locked memory", 16000, 1024), ("RLIMIT_NOFILE", "open files", 1000000, 1),
           ("RLIMIT_STACK", "stack size", 8000, 1024), ("RLIMIT_NPROC", "max user processes", 1000000, 1))


def _rdma_used(env: dict) -> bool:
    """True when NCCL may use InfiniBand: an HCA is named, or the node has one (and IB is not disabled)."""
    if env.get("NCCL_IB_DISABLE", "0") == "1":
        return False
    if env.get("NCCL_IB_HCA"):
        return True
    try:
        return any(Path("/sys/class/infiniband").iterdir())
    except OSError:
        return False


def _ulimit_shortfalls() -> list[str]:
    import resource

    short = []
    for attribute, name, minimum, unit in ULIMITS:
        if not hasattr(resource, attribute):
            continue
        soft, _hard = resource.getrlimit(getattr(resource, attribute))
        if soft != resource.RLIM_INFINITY and soft // unit <= minimum:
            short.append(f"{name} is {soft // unit}, not more than {minimum}")
    return short


def precheck(spec: dict, run_dir: Path, env: dict) -> None:
    """ModelArts-style environment checks, logged as `code: <n>, message: <m>, item: <item>`."""
    limits = spec.get("precheck") or {}
    started = time.monotonic()
    event("训练环境预检中 / Environment pre-check running")
    say("[task] Detect")
    problems = []

    def report(item: str, ok: bool, message: str) -> None:
        level, code = ("INFO", 0) if ok else ("ERROR", 13)
        print(f"[atelier][{level}][detect] code: {code}, message: {'ok' if ok else message}, item: {item}",
              flush=True)
        if not ok:
            problems.append(f"{item}: {message}")

    hosts = [h for h in env.get("VC_WORKER_HOSTS", "").split(",") if h]
    unresolved = []
    for host in hosts:
        try:
            socket.getaddrinfo(host, None)
        except OSError:
            unresolved.append(host)
    report("dns", not unresolved, f"cannot resolve {', '.join(unresolved)}")
    for item, path, need in (("disk-size root", "/", limits.get("root_bytes", 0)),
                             ("disk-size shm", "/dev/shm", limits.get("shm_bytes", 0)),
                             ("disk-size cache", str(run_dir / "cache"), limits.get("cache_bytes", 0))):
        if item == "disk-size shm" and not os.path.isdir(path):
            report(item, True, "")
            continue
        free = _free(path)
        report(item, free >= need, f'the disk space of the path "{path}" is {free}, which is less than {need}')
    if _rdma_used(env):
        short = _ulimit_shortfalls()
        report("ulimit", not short, "; ".join(short))
    if env.get("CUDA_VISIBLE_DEVICES"):
        ok = shutil.which("nvidia-smi") is not None or any(Path("/dev").glob("nvidia[0-9]*"))
        report("gpu-check", ok, "no GPU driver found on this node")
    if problems:
        event("检查失败。发现错误 / Check failed. Error found: " + "; ".join(problems), seconds=time.monotonic() - started,
              level="error")
        fail(EXIT_PRECHECK, "pre-check failed: " + "; ".join(problems))
    event("预检完成 / Pre-check done", seconds=time.monotonic() - started)


def place_code(spec: dict, run_dir: Path, job_dir: Path) -> Path:
    code = spec.get("code")
    job_dir.mkdir(parents=True, exist_ok=True)
    if not code:
        return job_dir
    staged = run_dir / "inputs" / code["input"]
    target = job_dir / code["folder"]
    started = time.monotonic()
    if target.exists():
        shutil.rmtree(target)
    if staged.exists():
        staged.rename(target)
    else:
        target.mkdir(parents=True)
    # The download itself is a step of the run engine ("训练代码下载中 / 下载完成" events, see
    # apps/training/pipeline_events.py); moving it into place is only worth a log line.
    say(f"Training code placed at {target} ({time.monotonic() - started:.1f} s)")
    return target


def install_requirements(workspace: Path, run_dir: Path, env: dict) -> None:
    found = [workspace / name for name in REQUIREMENT_FILES if (workspace / name).is_file()]
    if not found:
        return
    target = run_dir / ".pydeps"
    for path in found:
        event(f"正在安装Python依赖包 / Installing Python dependencies, file: {path.name}")
        started = time.monotonic()
        command = [sys.executable, "-m", "pip", "install", "--disable-pip-version-check", "--no-warn-script-location",
                   "--target", str(target), "--find-links", str(workspace), "-r", str(path)]
        if env.get("MA_PIP_URL"):
            command += ["--index-url", env["MA_PIP_URL"]]
        result = subprocess.run(command, cwd=workspace, env=env, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            event(f"Python依赖包安装失败 / Installing Python dependencies failed, file: {path.name}, "
                  f"pip exit code {result.returncode}",
                  seconds=time.monotonic() - started, level="error")
            fail(EXIT_REQUIREMENTS, f"Installing Python dependencies from {path.name} failed (pip exited with code "
                                    f"{result.returncode}).")
        event(f"Python依赖包安装完成 / Python dependencies installed, file: {path.name}", seconds=time.monotonic() - started)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(target), env.get("PYTHONPATH", "")]))


def run_hook(folder: Path, env: dict) -> None:
    for name in HOOKS:
        hook = folder / name
        if not hook.is_file():
            continue
        event(f"正在执行启动前脚本 {name} / Running the pre-start hook {name}")
        started = time.monotonic()
        command = ["/bin/sh", str(hook)] if name.endswith(".sh") else [sys.executable, str(hook)]
        result = subprocess.run(command, cwd=folder, env=env, stdin=subprocess.DEVNULL)
        if result.returncode != 0:
            event(f"启动前脚本 {name} 执行失败, 退出码 {result.returncode} / Pre-start hook {name} failed, "
                  f"exit code {result.returncode}", seconds=time.monotonic() - started,
                  level="error")
            fail(EXIT_HOOK, f"The pre-start hook {name} exited with code {result.returncode}.")
        event(f"启动前脚本 {name} 执行完成 / Pre-start hook {name} done", seconds=time.monotonic() - started)
        return


def link_mounts(spec: dict, run_dir: Path) -> None:
    """Extra mounts: a symbolic link per mount path, pointing to the host folder."""
    for mount in spec.get("mounts") or []:
        source, link = Path(mount["source"]), run_dir / mount["path"]
        if not source.is_dir():
            fail(EXIT_LAYOUT, f"Mount source {source} is not a folder on this node.")
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            fail(EXIT_LAYOUT, f"Mount path {link} already exists in the run directory.")
        link.symlink_to(source, target_is_directory=True)
        say(f"Mounted {source} at {link}.")


def switch_user(uid, run_dir: Path, env: dict):
    """The (uid, gid) to drop to before exec, or None; hands the run directory to that uid."""
    if uid is None:
        return None
    current = os.geteuid()
    if uid == current:
        say(f"Running as uid {uid}.")
        return None
    if current != 0:
        say(f"Run-as uid {uid} not applied: this worker runs as uid {current} and cannot switch users.")
        return None
    for parent in run_dir.parents:
        info = parent.stat()
        if not (info.st_mode & 0o001 or info.st_uid == uid):
            say(f"Run-as uid {uid} not applied: {parent} is closed to other users, so uid {uid} could not reach "
                f"the run directory.")
            return None
    for folder, dirs, files in os.walk(run_dir):
        # .atelier holds the run engine's own files; they stay the worker's.
        dirs[:] = [d for d in dirs if not (folder == str(run_dir) and d == ".atelier")]
        for name in [folder, *(os.path.join(folder, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)
    env["HOME"] = str(run_dir)
    say(f"Running as uid {uid}.")
    return uid, uid


def arguments(spec: dict, run_dir: Path) -> list[str]:
    pairs = []
    for channel in spec.get("inputs", []):
        if channel["acquisition"] == "hyperparameter":
            pairs.append((channel["name"], str(run_dir / "inputs" / channel["local"])))
    for channel in spec.get("outputs", []):
        if channel["acquisition"] == "hyperparameter":
            pairs.append((channel["name"], str(run_dir / "outputs" / channel["local"])))
    pairs.extend((name, value) for name, value in spec.get("hyperparameters", []))
    return [f"--{name}={value}" for name, value in sorted(pairs)]


def main() -> None:
    spec = json.loads(sys.argv[1])
    # Preparation (code, pre-check, dependencies, hook) does not count towards the maximum runtime.
    event("训练环境准备中 / Preparing the training environment", clock="hold")
    run_dir = Path(os.environ["ATELIER_WORK_DIR"])
    restart = int(os.environ.get("ATELIER_RESTART_COUNT", "0") or 0)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    job_dir = run_dir / (spec.get("local_code_dir") or "user-job-dir")
    workspace = place_code(spec, run_dir, job_dir)

    for channel in spec.get("outputs", []):
        local = run_dir / "outputs" / channel["local"]
        local.mkdir(parents=True, exist_ok=True)
        if restart == 0 and not channel.get("predownload"):
            # Restored only so that a restart can resume; the first attempt starts from an empty folder.
            for child in local.iterdir():
                shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    if restart:
        say(f"Restart {restart}: the output folders hold what the previous attempt uploaded.")

    for folder in ("log", "cache"):
        (run_dir / folder).mkdir(exist_ok=True)
    link_mounts(spec, run_dir)
    env = dict(os.environ)
    env.update(spec.get("platform_env") or {})
    env.update({
        "MA_HOME": str(run_dir), "MA_MOUNT_PATH": str(run_dir), "MA_JOB_DIR": str(job_dir),
        "MA_LOG_DIR": str(run_dir / "log"), "MA_SCRIPT_INTERPRETER": "", "WORKSPACE": str(workspace),
        "MA_SKIP_IMAGE_DETECT": "1", "MA_RESTART_COUNT": str(restart), "TMPDIR": str(run_dir / "cache"),
    })
    if spec["boot"]["kind"] in ("file", "builtin"):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(job_dir), env.get("PYTHONPATH", "")]))
    if not env.get("CUDA_VISIBLE_DEVICES") and env.get("MA_NCCL_CPU_FALLBACK", "1") != "0":
        # CPU nodes: torch.distributed's "nccl" backend is served by gloo (see compat/sitecustomize.py).
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE / "compat"), env.get("PYTHONPATH", "")]))
    for channel in spec.get("inputs", []):
        if channel["acquisition"] == "env":
            env[channel["name"]] = str(run_dir / "inputs" / channel["local"])
    for channel in spec.get("outputs", []):
        if channel["acquisition"] == "env":
            env[channel["name"]] = str(run_dir / "outputs" / channel["local"])
    env.update(spec.get("user_env") or {})

    if env.get("MA_SKIP_IMAGE_DETECT", "1") != "0":
        precheck(spec, run_dir, env)
    if spec.get("install_requirements") and spec.get("code"):
        install_requirements(workspace, run_dir, env)

    boot = spec["boot"]
    args = arguments(spec, run_dir)
    if boot["kind"] == "builtin":
        target = HERE / f"{boot['name']}.py"
    elif boot["kind"] == "file":
        target = workspace / boot["path"]
        if not target.is_file():
            fail(EXIT_LAYOUT, f"The boot file {boot['path']} is not in the code folder.")
    else:
        target = None
    run_hook(target.parent if target is not None else workspace, env)

    master = f"{env.get('MASTER_ADDR', '127.0.0.1')}:{env.get('MASTER_PORT', '29500')}"
    mode = (spec.get("distributed") or {}).get("mode", "modelarts")
    if target is None:
        argv = ["/bin/sh", "-c", " ".join([boot["command"], *map(shlex.quote, args)])]
    elif world > 1 and mode == "torchrun":
        argv = [sys.executable, "-m", "torch.distributed.run", f"--nnodes={world}",
                f"--node_rank={env.get('RANK', '0')}", "--nproc_per_node=1", f"--master_addr={master.split(':')[0]}",
                f"--master_port={master.split(':')[1]}", str(target), *args]
    else:
        argv = [sys.executable, str(target), *args]
        if world > 1:
            argv += [f"--init_method=tcp://{master}", f"--rank={env.get('RANK', '0')}", f"--world_size={world}"]
    cwd = run_dir / spec["working_dir"] if spec.get("working_dir") else workspace
    cwd.mkdir(parents=True, exist_ok=True)
    shown = argv if target is not None else argv[2:]
    say(f"Training process starts: {' '.join(shlex.quote(a) for a in shown)}")
    event("训练任务开始运行 / Training process started", clock="start")
    drop = switch_user(spec.get("run_as_uid"), run_dir, env)
    sys.stdout.flush()
    os.chdir(cwd)
    if drop is not None:
        os.setgroups([])
        os.setgid(drop[1])
        os.setuid(drop[0])
    os.execvpe(argv[0], argv, env)


if __name__ == "__main__":
    main()
