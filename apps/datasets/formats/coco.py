"""COCO instances JSON (detection boxes and polygon segmentation): reader and document builder."""
from __future__ import annotations

import json
from typing import Iterator

from apps.core.storage import get_storage

from ..choices import ErrorCode, LabelType, Shape
from .items import AnnSpec, ImportItem, Problem, extension, read_label_file, walk


def _json_files(root) -> list:
    if get_storage().is_folder(root):
        return [path for path, info, rel in walk(root) if extension(rel) == ".json"]
    return [root]


def _image_path(base, file_name: str):
    storage = get_storage()
    candidates = [base.child(file_name), base.child("images").child(file_name)]
    if base.key:
        candidates += [base.parent.child("images").child(file_name), base.parent.child(file_name)]
    for path in candidates:
        if storage.exists(path):
            return path
    return None


def read_coco(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_type = ingestor.dataset.label_type
    for path in _json_files(root):
        try:
            doc = json.loads(read_label_file(path))
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message)
            continue
        except json.JSONDecodeError as exc:
            ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR, f"Not valid JSON: {exc.msg} (line {exc.lineno}).",
                      line=exc.lineno)
            continue
        if not isinstance(doc, dict) or not isinstance(doc.get("images"), list):
            ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR, 'A COCO file has an "images" list.')
            continue
        categories = {c.get("id"): str(c.get("name")) for c in doc.get("categories") or [] if isinstance(c, dict)}
        by_image: dict = {}
        for index, ann in enumerate(doc.get("annotations") or []):
            if not isinstance(ann, dict):
                continue
            name = categories.get(ann.get("category_id"))
            if name is None:
                ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR,
                          f"annotation {ann.get('id', index)} names category {ann.get('category_id')}, "
                          "which is not in categories.")
                continue
            specs = by_image.setdefault(ann.get("image_id"), [])
            segmentation = ann.get("segmentation")
            if label_type == LabelType.IMAGE_SEGMENTATION and segmentation:
                if not isinstance(segmentation, list):
                    ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR,
                              f"annotation {ann.get('id', index)} is an RLE mask; only polygon segmentation is read.")
                    continue
                for polygon in segmentation:
                    points = [[polygon[i], polygon[i + 1]] for i in range(0, len(polygon) - 1, 2)]
                    specs.append(AnnSpec(label=name, type=label_type, shape=Shape.POLYGON,
                                         geometry={"points": points}))
                continue
            bbox = ann.get("bbox")
            if not (isinstance(bbox, list) and len(bbox) == 4):
                ctx.error(path.uri, ErrorCode.ANNOTATION_PARSE_ERROR,
                          f"annotation {ann.get('id', index)} has no [x, y, width, height] bbox.")
                continue
            x, y, w, h = (float(v) for v in bbox)
            box = {"xmin": x, "ymin": y, "xmax": round(x + w, 4), "ymax": round(y + h, 4)}
            box = {k: int(v) if float(v).is_integer() else v for k, v in box.items()}
            props = {"iscrowd": 1} if ann.get("iscrowd") else {}
            specs.append(AnnSpec(label=name, type=label_type, shape=Shape.BNDBOX, geometry=box, properties=props,
                                 confidence=ann.get("score")))
        for image in doc["images"]:
            file_name = str(image.get("file_name") or "")
            src = _image_path(path.parent, file_name) if file_name else None
            if src is None:
                ctx.error(path.uri, ErrorCode.MISSING_SOURCE,
                          f'image {image.get("id")}: "{file_name}" was not found next to the JSON or in images/.')
                continue
            yield ImportItem(origin=src.uri, src=src, rel=file_name, width=image.get("width"),
                             height=image.get("height"), annotations=by_image.get(image.get("id"), []))


def coco_document(images: list[dict], annotations: list[dict], categories: list[str]) -> dict:
    """Build the JSON object: images [{id, file_name, width, height}], annotations from our rows."""
    category_ids = {name: index for index, name in enumerate(categories, start=1)}
    out_annotations = []
    for ann_id, ann in enumerate(annotations, start=1):
        g = ann["geometry"]
        if ann["shape"] == Shape.BNDBOX:
            x, y, w, h = g["xmin"], g["ymin"], g["xmax"] - g["xmin"], g["ymax"] - g["ymin"]
            segmentation = []
        else:
            points = g["points"]
            xs, ys = [p[0] for p in points], [p[1] for p in points]
            x, y, w, h = min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)
            segmentation = [[coord for point in points for coord in point]]
        out_annotations.append({
            "id": ann_id, "image_id": ann["image_id"], "category_id": category_ids[ann["label"]],
            "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0, "segmentation": segmentation,
        })
    return {
        "info": {"description": "Exported by Atelier"},
        "images": images,
        "annotations": out_annotations,
        "categories": [{"id": i, "name": name, "supercategory": ""} for name, i in category_ids.items()],
    }
