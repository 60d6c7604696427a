"""Realise an edge instance's volumes in its run directory, then run the instance.

    python apps/deployment/edge/volumes.py --volumes '<json list>' -- <instance argv...>

Run by the run engine on the edge node, in the instance's run directory (its working directory),
with no Django: `--volumes` is the service's validated list ({"name", "type", "mount_path",
"read_only", and "host_path" | "medium" | "source"}). A process-based instance has no mount
namespace, so, as training's extra mounts do, each mount path becomes a symbolic link at
`<run dir>/<mount path>`:

* host_path: the link points at the node's folder (which must exist); the node's files are used
  in place, never copied. Read-only is enforced only where the agent may mount (root with
  CAP_SYS_ADMIN): the folder is bind-mounted read-only at a private mount point outside the run
  directory and the link points there. Otherwise (not root, or the bind refused) the link points
  at the folder itself and the flag cannot be enforced (a line in the log says so).
* temp_path: the link points at a fresh folder — `<run dir>/volumes/<name>` on disk, wiped with
  the run directory when the instance ends (removal unlinks the links without following them),
  or, for the memory medium, a folder under /dev/shm (tmpfs) removed when the instance ends.
* nfs: `server:/export` is mounted (`mount -t nfs -o ro|rw`) at a private mount point outside the
  run directory and unmounted when the instance ends. This needs the NFS client (`mount.nfs`,
  from nfs-common / nfs-utils) and root; without them the instance fails before it starts and
  says which is missing. Nothing is faked: there is no fallback copy.

Mount points are kept outside the run directory so that wiping it can never descend into a
node folder or an NFS export. When a volume needs cleaning up (a mount, a memory folder) this
script stays as the instance's parent, passes SIGTERM/SIGINT/SIGHUP on, cleans up after the
instance exits and exits with its status; otherwise it execs the instance. A SIGKILL of the whole
process group leaves a mount behind (outside the run directory); the agent log names it.

The instance finds the root in EDGE_MOUNT_ROOT (the run directory) and EDGE_VOLUMES (JSON:
mount path → the link's absolute path). A bad volume exits with status 16 and a line
`[edge volumes] Volume "<name>": …` saying why, which the console shows as the service's reason.
"""
from __future__ import annotations

import os
import sys

# Run as a script, this folder comes first on sys.path, and its selectors.py would shadow the
# standard module subprocess imports.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import ctypes  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

EXIT_VOLUME = 16
LOG_MARKER = "[edge volumes] "
MOUNT_TIMEOUT = 60


class VolumeError(Exception):
    """A volume cannot be realised; the message starts with `Volume "<name>":`."""


def say(message: str) -> None:
    print(f"{LOG_MARKER}{message}", file=sys.stderr, flush=True)


def _mount(argv: list[str]) -> str:
    """Run a mount command; returns "" on success, else its error in one line."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=MOUNT_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return str(exc)
    if done.returncode == 0:
        return ""
    return " ".join((done.stderr or done.stdout or f"exit status {done.returncode}").split())[:300]


def _can_mount() -> bool:
    return os.geteuid() == 0 and shutil.which("mount") is not None


def _nfs_client() -> str | None:
    for folder in (*os.environ.get("PATH", "").split(os.pathsep), "/sbin", "/usr/sbin"):
        if folder and os.access(os.path.join(folder, "mount.nfs"), os.X_OK):
            return os.path.join(folder, "mount.nfs")
    return None


class Volumes:
    """The volumes of one instance: links made in `realise`, mounts and memory folders undone in `cleanup`."""

    def __init__(self, run_dir: Path):
        self.run_dir = run_dir
        self.mounts: list[Path] = []  # private mount points, unmounted (then removed) at the end
        self.folders: list[Path] = []  # memory-medium folders, removed at the end

    @property
    def needs_cleanup(self) -> bool:
        return bool(self.mounts or self.folders)

    def _private_point(self, name: str) -> Path:
        return Path(tempfile.mkdtemp(prefix=f"atelier-edge-{name}-"))

    def _host_path(self, volume: dict) -> Path:
        target = Path(volume["host_path"])
        if not target.is_dir():
            raise VolumeError(f'Volume "{volume["name"]}": host path {target} is not a folder on this node.')
        if not volume.get("read_only"):
            return target
        if not _can_mount():
            say(f'{volume["name"]}: read-only is not enforced for host path {target}: the agent is not root, '
                "and a process cannot restrict its own view of a folder.")
            return target
        point = self._private_point(volume["name"])
        error = _mount(["mount", "--bind", str(target), str(point)])
        if not error:
            error = _mount(["mount", "-o", "remount,bind,ro", str(point)])
            if not error:
                self.mounts.append(point)
                return point
            _mount(["umount", str(point)])  # a writable bind is no better than the folder itself
        point.rmdir()
        # Root without CAP_SYS_ADMIN (an unprivileged container): the folder is still usable, as before.
        say(f'{volume["name"]}: read-only is not enforced for host path {target}: the read-only bind mount was '
            f"refused ({error}).")
        return target

    def _temp_path(self, volume: dict) -> Path:
        if volume.get("medium") == "memory":
            shm = Path("/dev/shm")
            if not shm.is_dir() or not os.access(shm, os.W_OK):
                raise VolumeError(f'Volume "{volume["name"]}": the memory medium needs a writable /dev/shm (tmpfs) '
                                  "on this node.")
            target = Path(tempfile.mkdtemp(prefix=f"atelier-edge-{volume['name']}-", dir=shm))
            self.folders.append(target)
            return target
        target = self.run_dir / "volumes" / volume["name"]
        target.mkdir(parents=True, exist_ok=True)
        return target

    def _nfs(self, volume: dict) -> Path:
        name, source = volume["name"], volume["source"]
        if _nfs_client() is None:
            raise VolumeError(f'Volume "{name}": cannot mount NFS {source}: this node has no NFS client '
                              "(mount.nfs; install nfs-common or nfs-utils).")
        if os.geteuid() != 0:
            raise VolumeError(f'Volume "{name}": cannot mount NFS {source}: mounting needs root, and the agent runs '
                              f"as uid {os.geteuid()}.")
        point = self._private_point(name)
        error = _mount(["mount", "-t", "nfs", "-o", "ro" if volume.get("read_only") else "rw", source, str(point)])
        if error:
            point.rmdir()
            raise VolumeError(f'Volume "{name}": mount -t nfs {source} failed: {error}')
        self.mounts.append(point)
        return point

    def realise(self, volumes: list[dict]) -> dict[str, str]:
        """Create the links (and mounts, folders); returns {mount path: link path}."""
        places = {}
        for volume in volumes:
            mount = str(volume["mount_path"])
            link = self.run_dir / mount.lstrip("/")
            if link.is_symlink():
                link.unlink()  # a restarted instance links again
            elif link.exists():
                raise VolumeError(f'Volume "{volume["name"]}": mount path {mount} clashes with {link} in the run '
                                  "directory.")
            if volume["type"] == "host_path":
                target = self._host_path(volume)
            elif volume["type"] == "nfs":
                target = self._nfs(volume)
            else:
                target = self._temp_path(volume)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(target, target_is_directory=True)
            say(f"{volume['type']} {volume['name']}: {mount} -> {target}"
                + (" (read-only)" if volume.get("read_only") else ""))
            places[mount] = str(link)
        return places

    def cleanup(self) -> None:
        """Unmount (lazily, should a file still be open) and remove what `realise` made outside the run dir."""
        for point in reversed(self.mounts):
            error = _mount(["umount", "-l", str(point)])
            if error:
                say(f"cannot unmount {point}: {error}; it stays mounted.")
                continue
            try:
                point.rmdir()
            except OSError:
                pass
        for folder in self.folders:
            shutil.rmtree(folder, ignore_errors=True)
        self.mounts, self.folders = [], []


def _die_with_parent() -> None:
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def supervise(command: list[str], volumes: Volumes) -> int:
    """Run the instance as a child, pass stop signals on, clean up after it; its exit status."""
    child = subprocess.Popen(command, preexec_fn=_die_with_parent)
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda number, _frame: child.send_signal(number))
    code = child.wait()
    volumes.cleanup()
    return code if code >= 0 else 128 - code


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--volumes" or argv[2] != "--":
        say("usage: volumes.py --volumes JSON -- ARGV...")
        sys.exit(EXIT_VOLUME)
    try:
        wanted = json.loads(argv[1])
    except ValueError as exc:
        say(f"Volume list: --volumes is not JSON: {exc}")
        sys.exit(EXIT_VOLUME)
    run_dir = Path.cwd()
    volumes = Volumes(run_dir)
    try:
        places = volumes.realise(wanted)
    except VolumeError as exc:
        volumes.cleanup()
        say(str(exc))
        sys.exit(EXIT_VOLUME)
    os.environ["EDGE_MOUNT_ROOT"] = str(run_dir)
    os.environ["EDGE_VOLUMES"] = json.dumps(places)
    command = argv[3:]
    if volumes.needs_cleanup:
        sys.exit(supervise(command, volumes))
    os.execvp(command[0], command)  # nothing to undo: the run engine supervises the instance itself


if __name__ == "__main__":
    main(sys.argv[1:])
