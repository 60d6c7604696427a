"""Label Studio JSON export (a list of tasks) → samples with their latest annotation results.

Percent geometry (rectanglelabels, polygonlabels, keypointlabels) is converted to pixels with
`original_width/height`; `choices` become classes; `labels` become text spans. Files are
looked up by name next to the JSON (Label Studio's upload prefixes are dropped).
"""
from __future__ import annotations

import json
from typing import Iterator

from apps.core.storage import get_storage

from ..choices import ErrorCode, LabelKind, Shape
from .items import AnnSpec, ImportItem, Problem, extension, read_label_file, walk

FILE_KEYS = ("image", "audio", "video", "img")


def _find(base, reference: str):
    storage = get_storage()
    name = reference.split("?", 1)[0].rstrip("/")
    tail = name.rpartition("/")[2]
    # Label Studio prefixes uploaded files with an 8-character id and a dash.
    stripped = tail.split("-", 1)[1] if len(tail) > 9 and tail[8] == "-" else tail
    for candidate in (tail, stripped):
        for folder in (base, base.child("images")):
            path = folder.child(candidate)
            if storage.exists(path):
                return path
    return None


def _results(task: dict) -> tuple[list[dict], str]:
    annotations = [a for a in task.get("annotations") or [] if isinstance(a, dict) and not a.get("was_cancelled")]
    if annotations:
        chosen = annotations[-1]
        by = chosen.get("completed_by")
        if isinstance(by, dict):
            by = by.get("email") or by.get("id")
        return list(chosen.get("result") or []), str(by or "human")
    predictions = [p for p in task.get("predictions") or [] if isinstance(p, dict)]
    if predictions:
        return list(predictions[-1].get("result") or []), str(predictions[-1].get("model_version") or "model")
    return [], "human"


def _specs(results: list[dict], label_type: str, by: str, source: str) -> list[AnnSpec]:
    specs = []
    for result in results:
        value = result.get("value") or {}
        kind = result.get("type")
        ow, oh = result.get("original_width"), result.get("original_height")
        common = dict(type=label_type, annotated_by=by, source=source, confidence=result.get("score"))
        if kind == "choices":
            specs += [AnnSpec(label=str(name), **common) for name in value.get("choices") or []]
        elif kind == "rectanglelabels" and ow and oh:
            x, y = value["x"] * ow / 100, value["y"] * oh / 100
            w, h = value["width"] * ow / 100, value["height"] * oh / 100
            box = {k: round(v, 2) for k, v in {"xmin": x, "ymin": y, "xmax": x + w, "ymax": y + h}.items()}
            specs += [AnnSpec(label=str(n), shape=Shape.BNDBOX, geometry=box, **common)
                      for n in value.get("rectanglelabels") or []]
        elif kind == "polygonlabels" and ow and oh:
            points = [[round(px * ow / 100, 2), round(py * oh / 100, 2)] for px, py in value.get("points") or []]
            specs += [AnnSpec(label=str(n), shape=Shape.POLYGON, geometry={"points": points}, **common)
                      for n in value.get("polygonlabels") or []]
        elif kind == "keypointlabels" and ow and oh:
            point = {"x": round(value["x"] * ow / 100, 2), "y": round(value["y"] * oh / 100, 2)}
            specs += [AnnSpec(label=str(n), shape=Shape.POINT, geometry=point, **common)
                      for n in value.get("keypointlabels") or []]
        elif kind == "labels":
            span = {"start": int(value.get("start", 0)), "end": int(value.get("end", 0))}
            specs += [AnnSpec(label=str(n), shape=Shape.SPAN, geometry=span, label_kind=LabelKind.ENTITY, **common)
                      for n in value.get("labels") or []]
    return specs


def read_label_studio(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_type = ingestor.dataset.label_type
    storage = get_storage()
    files = [p for p, info, rel in walk(root) if extension(rel) == ".json"] if storage.is_folder(root) else [root]
    for path in files:
        try:
            tasks = json.loads(read_label_file(path))
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message)
            continue
        except json.JSONDecodeError as exc:
            ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR, f"Not valid JSON: {exc.msg} (line {exc.lineno}).",
                      line=exc.lineno)
            continue
        if isinstance(tasks, dict):
            tasks = [tasks]
        for index, task in enumerate(tasks, start=1):
            data = task.get("data") if isinstance(task, dict) else None
            if not isinstance(data, dict):
                ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR, f'task {index} has no "data" object.')
                continue
            results, by = _results(task)
            source = "human" if task.get("annotations") else "model"
            specs = _specs(results, label_type, by, source)
            if "text" in data and not any(k in data for k in FILE_KEYS):
                yield ImportItem(origin=f"{path.uri} task {task.get('id', index)}", text=str(data["text"]),
                                 annotations=specs)
                continue
            reference = next((str(data[k]) for k in FILE_KEYS if k in data), "")
            src = _find(path.parent, reference) if reference else None
            if src is None:
                ctx.error(path.uri, ErrorCode.MISSING_SOURCE,
                          f'task {task.get("id", index)}: "{reference}" was not found next to the JSON.')
                continue
            yield ImportItem(origin=src.uri, src=src, rel=src.name, annotations=specs)
