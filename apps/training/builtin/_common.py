"""Helpers shared by the built-in algorithms (they run inside runs: standard library and numpy only here).

Arguments arrive as `--name=value` text; metrics go out as ATELIER_METRIC lines (through the
`atelier` helper the run engine puts on PYTHONPATH); checkpoints live in `<train_url>/checkpoints`
so a restarted attempt, whose output folder was restored, resumes from them.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import numpy as np

try:
    from atelier import log_metric
except ImportError:  # outside a run: print the same line the helper would
    def log_metric(name, value, step=None):
        record = {"name": name, "value": float(value)}
        if step is not None:
            record["step"] = step
        print("ATELIER_METRIC " + json.dumps(record), flush=True)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def parse_args(spec: dict[str, tuple[type, object]]) -> argparse.Namespace:
    """Parse `--data_url`, `--train_url` and the given hyperparameters; unknown platform args are ignored."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--data_url", required=True)
    parser.add_argument("--train_url", required=True)
    for name, (kind, default) in spec.items():
        parser.add_argument(f"--{name}", type=kind, default=default)
    args, _unknown = parser.parse_known_args()
    return args


def restart_count() -> int:
    return int(os.environ.get("ATELIER_RESTART_COUNT", "0") or 0)


def say(message: str) -> None:
    print(message, flush=True)


def classification_report(y_true, y_pred, labels: list[str]) -> dict:
    """Accuracy, per-class precision/recall/F1/support, macro averages and the confusion matrix."""
    n = len(labels)
    matrix = np.zeros((n, n), dtype=np.int64)
    for t, p in zip(y_true, y_pred):
        matrix[int(t), int(p)] += 1
    per_class = []
    for k, label in enumerate(labels):
        tp = matrix[k, k]
        predicted = matrix[:, k].sum()
        actual = matrix[k, :].sum()
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class.append({"label": label, "precision": float(precision), "recall": float(recall), "f1": float(f1),
                          "support": int(actual)})
    present = [c for c in per_class if c["support"]]
    macro = {m: float(np.mean([c[m] for c in present])) if present else 0.0 for m in ("precision", "recall", "f1")}
    total = matrix.sum()
    return {"accuracy": float(np.trace(matrix) / total) if total else 0.0, "per_class": per_class,
            "confusion_matrix": matrix.tolist(), "labels": labels, **{f"macro_{k}": v for k, v in macro.items()}}


def regression_report(y_true, y_pred) -> dict:
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    err = y_pred - y_true
    mse = float(np.mean(err ** 2))
    ss_tot = float(np.sum((y_true - y_true.mean()) ** 2))
    return {"mae": float(np.mean(np.abs(err))), "mse": mse, "rmse": float(np.sqrt(mse)),
            "r2": float(1 - np.sum(err ** 2) / ss_tot) if ss_tot else 0.0}


def write_json(path: Path, data) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)  # a reader (or the periodic upload) never sees half a file


def copy_service_files(model_dir: Path, *names: str) -> None:
    """Copy inference modules that ship with the built-ins into the package's model folder."""
    here = Path(__file__).resolve().parent
    for name in names:
        target = "customize_service.py" if name.startswith("service_") else name
        shutil.copyfile(here / name, model_dir / target)


def find_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def read_manifest(root: Path) -> list[dict]:
    """Lines of every *.manifest under `root` (ModelArts manifest: one JSON object per line)."""
    items = []
    for manifest in sorted(root.rglob("*.manifest")):
        for line in manifest.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if line:
                items.append(json.loads(line))
    return items


def resolve_source(root: Path, source: str, index: dict[str, Path]) -> Path | None:
    """A manifest `source` (storage://…, s3://… or relative) mapped to a staged file under `root`."""
    tail = source.split("://", 1)[-1]
    parts = tail.split("/")
    for start in range(len(parts)):
        candidate = "/".join(parts[start:])
        if candidate in index:
            return index[candidate]
    return None


def file_index(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in root.rglob("*") if p.is_file()}


def package_dependencies(*packages: tuple[str, str]) -> list[dict]:
    return [{"installer": "pip", "packages": [
        {"package_name": name, "package_version": version, "restraint": "ATLEAST" if version else ""}
        for name, version in packages]}]
