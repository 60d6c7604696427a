"""Realise an edge instance's volumes in its run directory, then exec the instance.

    python apps/deployment/edge/volumes.py --volumes '<json list>' -- <instance argv...>

Run by the run engine on the edge node, in the instance's run directory (its working directory),
with no Django: `--volumes` is the service's validated list ({"name", "type", "mount_path",
"host_path"?}). A process-based instance has no mount namespace, so, as training's extra mounts
do, each mount path becomes a symbolic link at `<run dir>/<mount path>`:

* host_path: the link points at the node's folder (which must exist); the node's files are used
  in place, never copied. Read-only cannot be enforced on a link: the flag is informational.
* temp_path: the link points at a fresh folder `<run dir>/volumes/<name>`, wiped with the run
  directory when the instance ends (the run engine removes it; removal unlinks the host-path
  links without following them).

The instance finds the root in EDGE_MOUNT_ROOT (the run directory) and EDGE_VOLUMES (JSON:
mount path → the link's absolute path). A bad volume exits with status 16 and says which.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

EXIT_VOLUME = 16


def fail(message: str) -> None:
    print(f"[edge volumes] {message}", file=sys.stderr, flush=True)
    sys.exit(EXIT_VOLUME)


def realise(volumes: list[dict], run_dir: Path) -> dict[str, str]:
    """Create the links (and temp folders); returns {mount path: link path}."""
    places = {}
    for volume in volumes:
        mount = str(volume["mount_path"])
        link = run_dir / mount.lstrip("/")
        if volume["type"] == "host_path":
            target = Path(volume["host_path"])
            if not target.is_dir():
                fail(f'Volume "{volume["name"]}": host path {target} is not a folder on this node.')
        else:
            target = run_dir / "volumes" / volume["name"]
            target.mkdir(parents=True, exist_ok=True)
        link.parent.mkdir(parents=True, exist_ok=True)
        if link.is_symlink():
            link.unlink()  # a restarted instance links again
        elif link.exists():
            fail(f'Volume "{volume["name"]}": mount path {mount} clashes with {link} in the run directory.')
        link.symlink_to(target, target_is_directory=True)
        print(f"[edge volumes] {volume['type']} {volume['name']}: {mount} -> {target}", flush=True)
        places[mount] = str(link)
    return places


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[0] != "--volumes" or argv[2] != "--":
        fail("usage: volumes.py --volumes JSON -- ARGV...")
    try:
        volumes = json.loads(argv[1])
    except ValueError as exc:
        fail(f"--volumes is not JSON: {exc}")
    run_dir = Path.cwd()
    places = realise(volumes, run_dir)
    os.environ["EDGE_MOUNT_ROOT"] = str(run_dir)
    os.environ["EDGE_VOLUMES"] = json.dumps(places)
    command = argv[3:]
    os.execvp(command[0], command)  # the run engine supervises the instance itself


if __name__ == "__main__":
    main(sys.argv[1:])
