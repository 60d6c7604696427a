"""Feature analysis of a published version (spec §8.4, items 35–38).

Image metrics for every analysed image; for detection also the box metrics of Table 5-20.
Classification analyses all images of the version, detection only labeled ones. Results are
stored on the operation (one row per image and per box, with its usage) and drawn as
overlaid plotly histograms per metric and version.
"""
from __future__ import annotations

import json

import numpy as np
from django.core.exceptions import ValidationError

from apps.core.paths import parse
from apps.core.permissions import require_perm

from .choices import FEATURE_LABEL_TYPES, LabelType, OperationKind, OperationStatus, Shape, VersionFormat, VersionStatus
from .formats.items import Problem, read_bytes
from .imaging import brightness, clarity, colorfulness, load_rgb, saturation
from .models import Annotation, DatasetOperation, DatasetVersion, Sample
from .operations import OperationContext, OperationFailed
from .services import operation_start

IMAGE_METRICS = [("resolution", "Resolution (width × height)"), ("aspect_ratio", "Aspect ratio (height / width)"),
                 ("brightness", "Brightness"), ("saturation", "Saturation"), ("clarity", "Clarity"),
                 ("colorfulness", "Colourfulness")]
BOX_METRICS = [("box_count", "Bounding box quantity"), ("box_area_std", "Std-dev of box areas per image"),
               ("box_aspect_ratio", "Box aspect ratio (h / w)"), ("box_area_ratio", "Box area ratio"),
               ("marginalization", "Marginalization"), ("overlap", "Overlap score"),
               ("box_brightness", "Box brightness"), ("box_clarity", "Box clarity")]
PER_BOX = {"box_aspect_ratio", "box_area_ratio", "marginalization", "overlap", "box_brightness", "box_clarity"}
USAGE_FILTER = {"all": None, "train": "TRAIN", "eval": "EVAL", "inference": "INFERENCE"}


def version_analysable(version: DatasetVersion) -> str:
    """Why the version cannot be analysed ("" when it can)."""
    if version.label_type not in FEATURE_LABEL_TYPES:
        return "Feature analysis is offered for image classification and object detection versions only."
    if version.status != VersionStatus.NORMAL:
        return "Only published versions (status Normal) can be analysed."
    if version.format != VersionFormat.DEFAULT:
        return "Only versions in the Default format can be analysed."
    if version.labeled_count == 0:
        return "The version has no labeled sample."
    return ""


def analysis_start(*, user, version: DatasetVersion) -> DatasetOperation:
    require_perm(user, version.dataset.workspace, "dataset:analyze")
    reason = version_analysable(version)
    if reason:
        raise ValidationError(reason)
    return operation_start(user=user, dataset=version.dataset, kind=OperationKind.ANALYSIS,
                           params={"version": version.name}, version=version)


def _version_samples(version: DatasetVersion) -> list[tuple[str, str]]:
    """(sample id, usage) of the version, read from its immutable manifest."""
    from apps.core.storage import get_storage

    out = []
    with get_storage().open(parse(version.manifest_uri)) as fh:
        for raw in fh:
            if raw.strip():
                doc = json.loads(raw)
                out.append((doc["id"], doc.get("usage", "")))
    return out


def box_metrics(rgb: np.ndarray, size: tuple[int, int], boxes: list[dict]) -> tuple[dict, list[dict]]:
    """Per-image box statistics and one row per box (coordinates in original pixels)."""
    width, height = size
    scale_x, scale_y = rgb.shape[1] / width, rgb.shape[0] / height
    areas = [max(b["xmax"] - b["xmin"], 0) * max(b["ymax"] - b["ymin"], 0) for b in boxes]
    image_row = {"box_count": len(boxes), "box_area_std": float(np.std(areas)) if len(areas) > 1 else 0.0}
    # Coverage grid at the measured resolution: how many boxes cover each pixel.
    cover = np.zeros(rgb.shape[:2], dtype=np.int32)
    scaled = []
    for b in boxes:
        x0, x1 = int(b["xmin"] * scale_x), max(int(np.ceil(b["xmax"] * scale_x)), int(b["xmin"] * scale_x) + 1)
        y0, y1 = int(b["ymin"] * scale_y), max(int(np.ceil(b["ymax"] * scale_y)), int(b["ymin"] * scale_y) + 1)
        scaled.append((x0, y0, x1, y1))
        cover[y0:y1, x0:x1] += 1
    cx_img, cy_img = width / 2, height / 2
    rows = []
    for b, area, (x0, y0, x1, y1) in zip(boxes, areas, scaled):
        w, h = b["xmax"] - b["xmin"], b["ymax"] - b["ymin"]
        cx, cy = (b["xmin"] + b["xmax"]) / 2, (b["ymin"] + b["ymax"]) / 2
        dx, dy = cx - cx_img, cy - cy_img
        # Distance from the centre to the border along the ray through the box centre.
        if dx == 0 and dy == 0:
            margin = 0.0
        else:
            t = min(cx_img / abs(dx) if dx else np.inf, cy_img / abs(dy) if dy else np.inf)
            margin = float(min(1.0, 1 / t))
        region = cover[y0:y1, x0:x1]
        overlap = float((region > 1).mean()) if region.size else 0.0
        crop = rgb[y0:y1, x0:x1]
        rows.append({"box_aspect_ratio": h / w if w else 0.0, "box_area_ratio": area / (width * height),
                     "marginalization": margin, "overlap": overlap, "box_brightness": brightness(crop),
                     "box_clarity": clarity(crop)})
    return image_row, rows


def run_analysis(ctx: OperationContext) -> dict:
    version = ctx.operation.version
    if version is None:
        raise OperationFailed("The analysed version was deleted.")
    detection = version.label_type == LabelType.OBJECT_DETECTION
    entries = _version_samples(version)
    samples = {s.pk: s for s in Sample.objects.filter(pk__in=[pk for pk, _ in entries])}
    boxes_by_sample: dict[str, list[dict]] = {}
    for sample_id, geometry in Annotation.objects.filter(sample_id__in=list(samples), shape=Shape.BNDBOX) \
            .values_list("sample_id", "geometry"):
        boxes_by_sample.setdefault(sample_id, []).append(geometry)
    ctx.set_total(len(entries))
    images, boxes = [], []
    for done, (pk, usage) in enumerate(entries, start=1):
        sample = samples.get(pk)
        if sample is None or not sample.source or (detection and not boxes_by_sample.get(pk)):
            ctx.progress(done)
            continue
        try:
            rgb, size = load_rgb(read_bytes(parse(sample.source)))
        except (Problem, OSError) as exc:
            ctx.error(sample.source, "CORRUPT_IMAGE", getattr(exc, "message", str(exc)))
            ctx.progress(done)
            continue
        row = {"usage": usage or "", "resolution": size[0] * size[1], "aspect_ratio": size[1] / size[0],
               "brightness": brightness(rgb), "saturation": saturation(rgb), "clarity": clarity(rgb),
               "colorfulness": colorfulness(rgb)}
        if detection:
            per_image, per_box = box_metrics(rgb, size, boxes_by_sample[pk])
            row.update(per_image)
            boxes += [b | {"usage": usage or ""} for b in per_box]
        images.append({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()})
        ctx.progress(done)
    return {"version": version.name, "images": images, "boxes": boxes}


def latest_results(version: DatasetVersion) -> dict | None:
    op = (DatasetOperation.objects.filter(version=version, kind=OperationKind.ANALYSIS,
                                          status=OperationStatus.SUCCEEDED).order_by("-finished_at").first())
    return op.result if op else None


def analysis_results(versions: list[DatasetVersion], *, usage: str = "all", metrics: list[str] | None = None
                     ) -> list[dict]:
    """One plotly figure per chosen metric, with a histogram per version that has results."""
    from .charts import histogram_figure

    names = dict(IMAGE_METRICS + BOX_METRICS)
    wanted = [m for m in (metrics or [k for k, _ in IMAGE_METRICS]) if m in names]
    wanted_usage = USAGE_FILTER.get(usage)
    figures = []
    data = {v.name: latest_results(v) for v in versions}
    for metric in wanted:
        series = {}
        for name, result in data.items():
            if not result:
                continue
            rows = result["boxes"] if metric in PER_BOX else result["images"]
            series[name] = [r[metric] for r in rows if metric in r and (wanted_usage is None or
                                                                         r.get("usage") == wanted_usage)]
        if series:
            y_title = "Boxes" if metric in PER_BOX else "Images"
            figures.append({"metric": metric, "title": names[metric], "element_id": f"chart-{metric}",
                            "figure": histogram_figure(series, x_title=names[metric], y_title=y_title)})
    return figures
