"""YOLO layout (spec §6.2 format 2): obj.names, obj.data, train.txt/valid.txt, obj_*_data/.

Only the train and valid subsets are read (train → usage TRAIN, valid → EVAL); other
subsets are ignored. A missing obj.names, or neither subset present, fails the run.
"""
from __future__ import annotations

import io
from typing import Iterator

from PIL import Image, UnidentifiedImageError

from apps.core.storage import get_storage

from ..choices import ErrorCode, Shape, Usage
from .items import AnnSpec, ImportItem, Problem, read_bytes, read_label_file

SUBSETS = (("train", Usage.TRAIN), ("valid", Usage.EVAL))


def _obj_data(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if "=" in line:
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def image_size(path) -> tuple[int, int]:
    """Width and height from the image header (no full decode)."""
    data = read_bytes(path)
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise Problem(ErrorCode.CORRUPT_IMAGE, f"The image cannot be read: {exc}") from None


def parse_yolo_lines(text: str, names: list[str], width: int, height: int, label_type: str, origin: str, ctx
                     ) -> list[AnnSpec]:
    specs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            if len(parts) != 5:
                raise ValueError("expected 5 values: class x_center y_center width height")
            cls = int(parts[0])
            xc, yc, w, h = (float(v) for v in parts[1:])
            if cls < 0 or cls >= len(names):
                raise ValueError(f"class {cls} is not in obj.names (0–{len(names) - 1})")
        except ValueError as exc:
            ctx.error(origin, ErrorCode.ANNOTATION_PARSE_ERROR, f"Line {number}: {exc}.", line=number)
            continue
        box = {"xmin": round((xc - w / 2) * width, 2), "ymin": round((yc - h / 2) * height, 2),
               "xmax": round((xc + w / 2) * width, 2), "ymax": round((yc + h / 2) * height, 2)}
        box = {k: int(v) if float(v).is_integer() else v for k, v in box.items()}
        specs.append(AnnSpec(label=names[cls], type=label_type, shape=Shape.BNDBOX, geometry=box))
    return specs


def read_yolo(ctx, root, ingestor) -> Iterator[ImportItem]:
    from ..operations import OperationFailed

    storage = get_storage()
    label_type = ingestor.dataset.label_type
    config = {}
    if storage.exists(root.child("obj.data")):
        config = _obj_data(read_label_file(root.child("obj.data")))
    names_path = root.child(config.get("names", "obj.names").removeprefix("data/"))
    if not storage.exists(names_path):
        raise OperationFailed("The YOLO layout needs obj.names (the label set); it is missing.")
    names = [line.split("#", 1)[0].strip() for line in read_label_file(names_path).splitlines()]
    names = [n for n in names if n]
    found_subset = False
    for subset, usage in SUBSETS:
        list_path = root.child(config.get(subset, f"{subset}.txt").removeprefix("data/"))
        if not storage.exists(list_path):
            continue
        found_subset = True
        for number, line in enumerate(read_label_file(list_path).splitlines(), start=1):
            rel = line.split("#", 1)[0].strip().removeprefix("data/").lstrip("./")
            if not rel:
                continue
            path = root.child(rel)
            item = ImportItem(origin=path.uri, src=path, rel=rel, usage=usage)
            if not storage.exists(path):
                ctx.error(list_path.uri, ErrorCode.MISSING_SOURCE, f"{rel} is listed but does not exist.",
                          line=number)
                continue
            label_path = root.child(rel.rsplit(".", 1)[0] + ".txt")
            if storage.exists(label_path):
                try:
                    width, height = image_size(path)
                    item.width, item.height = width, height
                    item.annotations = parse_yolo_lines(read_label_file(label_path), names, width, height,
                                                        label_type, label_path.uri, ctx)
                except Problem as problem:
                    ctx.error(path.uri, problem.code, problem.message)
                    continue
            yield item
    if not found_subset:
        raise OperationFailed("The YOLO layout needs train.txt or valid.txt (at least one subset); both are missing.")


def yolo_line(label_index: int, box: dict, width: int, height: int) -> str:
    xc = (box["xmin"] + box["xmax"]) / 2 / width
    yc = (box["ymin"] + box["ymax"]) / 2 / height
    w = (box["xmax"] - box["xmin"]) / width
    h = (box["ymax"] - box["ymin"]) / height
    return f"{label_index} {xc:.6f} {yc:.6f} {w:.6f} {h:.6f}"
