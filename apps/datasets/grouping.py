"""Auto-grouping (spec §8.2, items 31–34): k-means over image features, written as a sample
attribute `<name>=<group>` or as a result file in storage.

The base feature is a 8×8 colour layout (192 values in 0–1);
the advanced options append clarity, brightness and colour statistics with a weight that
makes them count, so choosing them changes the grouping.
"""
from __future__ import annotations

import io
import json

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from PIL import Image

from apps.core.paths import StoragePath, parse
from apps.core.permissions import require_perm
from apps.core.storage import get_storage

from .choices import AUTO_GROUP_LABEL_TYPES, FormatCategory, OperationKind
from .formats.items import Problem, read_bytes
from .imaging import brightness, clarity, colorfulness, load_rgb, saturation
from .models import Dataset, DatasetOperation, Sample, SampleAttribute
from .operations import OperationContext, OperationFailed
from .services import dataset_revision_bump, operation_start

FEATURES = ("clarity", "brightness", "colour")
# Each advanced feature weighs as much as this many layout values, so it can move the clusters.
ADVANCED_WEIGHT = 24
ITERATIONS = 30


def auto_group_start(*, user, dataset: Dataset, groups, handling: str, attribute: str = "",
                     result_path: StoragePath | None = None, features: list[str] | None = None) -> DatasetOperation:
    """Validate and start auto-grouping (image classification, detection and segmentation only)."""
    require_perm(user, dataset.workspace, "dataset:update")
    errors: dict[str, list[str]] = {}
    if dataset.label_type not in AUTO_GROUP_LABEL_TYPES:
        errors["groups"] = ["Auto-grouping is offered for image classification, object detection and image "
                            "segmentation datasets only."]
    if not isinstance(groups, int) or isinstance(groups, bool) or not 2 <= groups <= 200:
        errors["groups"] = [f"The number of groups is an integer from 2 to 200, not {groups!r}."]
    if handling == "attribute":
        if not (attribute or "").strip():
            errors["attribute"] = ["Name the sample attribute that receives the group."]
        elif len(attribute) > 128:
            errors["attribute"] = ["An attribute name has at most 128 characters."]
    elif handling == "storage":
        if result_path is None:
            errors["result_path"] = ["Choose the directory that receives the result file."]
    else:
        errors["handling"] = [f'"{handling}" is not a result handling; choose attribute or storage.']
    bad = sorted(set(features or []) - set(FEATURES))
    if bad:
        errors["features"] = [f'Unknown feature(s): {", ".join(bad)}; choose from {", ".join(FEATURES)}.']
    if errors:
        raise ValidationError(errors)
    return operation_start(user=user, dataset=dataset, kind=OperationKind.AUTO_GROUP, params={
        "groups": groups, "handling": handling, "attribute": attribute.strip(),
        "result_path": result_path.uri if result_path else "", "features": sorted(set(features or []))})


def feature_vector(data: bytes, features: list[str]) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as im:
        small = np.asarray(im.convert("RGB").resize((8, 8), Image.Resampling.BILINEAR), dtype=np.float64)
    layout = small.flatten() / 255
    parts = [layout]
    if features:
        rgb, _ = load_rgb(data, max_side=256)
        extra = []
        if "clarity" in features:
            extra.append(np.log1p(clarity(rgb)) / 10)
        if "brightness" in features:
            extra.append(brightness(rgb) / 255)
        if "colour" in features:
            extra += [saturation(rgb), colorfulness(rgb) / 150]
        parts.append(np.repeat(np.array(extra), ADVANCED_WEIGHT))
    return np.concatenate(parts)


def kmeans(points: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """Labels 0..k-1 by Lloyd's algorithm with k-means++ seeding (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    centers = [points[rng.integers(len(points))]]
    for _ in range(1, k):
        dist = np.min([((points - c) ** 2).sum(axis=1) for c in centers], axis=0)
        total = dist.sum()
        centers.append(points[rng.choice(len(points), p=dist / total)] if total > 0 else points[rng.integers(len(points))])
    centers = np.array(centers)
    labels = np.zeros(len(points), dtype=int)
    for _ in range(ITERATIONS):
        distances = ((points[:, None, :] - centers[None, :, :]) ** 2).sum(axis=2)
        new = distances.argmin(axis=1)
        if np.array_equal(new, labels) and _ > 0:
            break
        labels = new
        for index in range(k):
            members = points[labels == index]
            if len(members):
                centers[index] = members.mean(axis=0)
    return labels


def run_auto_group(ctx: OperationContext) -> dict:
    params, dataset = ctx.params, ctx.dataset
    samples = list(Sample.objects.filter(dataset=dataset, format_category=FormatCategory.IMAGE)
                   .order_by("created_at", "id").values_list("pk", "source"))
    k = params["groups"]
    if len(samples) < k:
        raise OperationFailed(f"{len(samples)} images cannot form {k} groups; choose at most {len(samples)}.")
    ctx.set_total(len(samples))
    vectors, ids = [], []
    for done, (pk, source) in enumerate(samples, start=1):
        try:
            vectors.append(feature_vector(read_bytes(parse(source)), params["features"]))
            ids.append(pk)
        except (Problem, OSError) as exc:
            ctx.error(source, "CORRUPT_IMAGE", getattr(exc, "message", str(exc)))
        ctx.progress(done)
    if len(ids) < k:
        raise OperationFailed(f"Only {len(ids)} images could be read; {k} groups need at least {k}.")
    labels = kmeans(np.array(vectors), k)
    assignment = {pk: int(label) for pk, label in zip(ids, labels)}
    sizes = {str(g): int((labels == g).sum()) for g in range(k)}
    if params["handling"] == "attribute":
        name = params["attribute"]
        with transaction.atomic():
            SampleAttribute.objects.filter(dataset=dataset, name=name).delete()
            SampleAttribute.objects.bulk_create([SampleAttribute(dataset=dataset, sample_id=pk, name=name,
                                                                 value=str(group)) for pk, group in assignment.items()],
                                                batch_size=1000)
            dataset_revision_bump(dataset.pk)
        return {"groups": sizes, "attribute": name}
    target = parse(params["result_path"]).child(f"auto-group-{ctx.operation.uid}.json")
    get_storage().save(target, io.BytesIO(json.dumps({"groups": assignment}, indent=1).encode()))
    return {"groups": sizes, "file": target.uri}
