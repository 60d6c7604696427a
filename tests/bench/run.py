"""Run the benchmarks: every `tests/bench/bench_<area>.py`, or only the area named.

    python tests/bench/run.py            # all areas
    python tests/bench/run.py core       # only bench_core.py

Each benchmark is a plain script that prints one JSON line per figure on stdout,
`{"bench": "<area>.<figure>", "value": <number>, "unit": "<unit>"}`, and its progress on
stderr. This runner passes both through and exits non-zero if any benchmark failed or
printed a line that is not such a figure.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def discover() -> dict[str, Path]:
    return {path.stem.removeprefix("bench_"): path for path in sorted(HERE.glob("bench_*.py"))}


def is_figure(line: str, area: str) -> bool:
    try:
        row = json.loads(line)
    except ValueError:
        return False
    return (isinstance(row, dict) and set(row) == {"bench", "value", "unit"}
            and isinstance(row["bench"], str) and row["bench"].startswith(f"{area}.")
            and isinstance(row["value"], (int, float)) and isinstance(row["unit"], str))


def run_area(area: str, script: Path) -> bool:
    proc = subprocess.Popen([sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    ok = True
    for line in proc.stdout:
        line = line.rstrip("\n")
        if not line:
            continue
        print(line, flush=True)
        if not is_figure(line, area):
            print(f"bench: {script.name} printed a line that is not a {area}.* figure: {line!r}", file=sys.stderr)
            ok = False
    if proc.wait() != 0:
        print(f"bench: {script.name} failed with exit code {proc.returncode}", file=sys.stderr)
        ok = False
    return ok


def main(argv: list[str]) -> int:
    areas = discover()
    wanted = [a for a in argv if a]
    unknown = [a for a in wanted if a not in areas]
    if unknown:
        print(f"bench: no benchmark for area {', '.join(unknown)}; areas: {', '.join(areas) or 'none'}",
              file=sys.stderr)
        return 2
    failed = [area for area in (wanted or list(areas)) if not run_area(area, areas[area])]
    if failed:
        print(f"bench: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
