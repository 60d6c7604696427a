"""Data processing (spec §8.1, item 30): validation, cleaning, selection (de-duplication), augmentation.

Validation reports corrupt or unsupported files and shapes outside their image; cleaning
removes the records of undecodable samples and clips shapes into the image (files in
storage are never deleted); selection removes near-duplicates by difference hash within a
Hamming threshold; augmentation writes transformed copies as new samples, with boxes
transformed for detection and no labels carried over for classification (as ModelArts).
"""
from __future__ import annotations

import io
import random

import numpy as np
from django.core.exceptions import ValidationError
from django.db import transaction
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

from apps.core.paths import parse
from apps.core.permissions import require_perm
from apps.core.storage import get_storage

from .choices import IMAGE_EXTENSIONS, DataType, ErrorCode, FormatCategory, LabelType, OperationKind, Shape
from .formats.items import AnnSpec, ImportItem, Problem, extension, read_bytes
from .formats.voc import out_of_bounds
from .imaging import dhash
from .imports import Ingestor, probe_image
from .models import Dataset, DatasetOperation, Sample
from .operations import OperationContext
from .services import dataset_counts_refresh, operation_start

OPERATIONS = ("validate", "clean", "dedupe", "augment")


def _box_map(fn):
    """Wrap a point transform (x, y, w, h) → (x, y) into a box transform."""
    def apply(box, w, h):
        xs, ys = zip(*(fn(x, y, w, h) for x, y in ((box["xmin"], box["ymin"]), (box["xmax"], box["ymax"]))))
        return {"xmin": min(xs), "ymin": min(ys), "xmax": max(xs), "ymax": max(ys)}
    return apply


def _crop(im):
    w, h = im.size
    return im.crop((w // 10, h // 10, w - w // 10, h - h // 10))


def _translate(im):
    w, h = im.size
    return im.transform(im.size, Image.Transform.AFFINE, (1, 0, -w // 10, 0, 1, -h // 10))


def _cutout(im):
    out = im.copy()
    w, h = im.size
    out.paste((0, 0, 0), (w // 3, h // 3, w // 3 + w // 4, h // 3 + h // 4))
    return out


def _noise(im):
    arr = np.asarray(im, dtype=np.int16)
    noisy = arr + np.random.default_rng(7).normal(0, 12, arr.shape).astype(np.int16)
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


def _hue(im):
    hsv = np.asarray(im.convert("HSV")).copy()
    hsv[..., 0] = (hsv[..., 0].astype(np.int16) + 20) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


# name → (image transform, box transform or None when boxes do not move). 22 operators.
OPERATORS = {
    "flip_horizontal": (ImageOps.mirror, _box_map(lambda x, y, w, h: (w - x, y))),
    "flip_vertical": (ImageOps.flip, _box_map(lambda x, y, w, h: (x, h - y))),
    "rotate_90": (lambda im: im.transpose(Image.Transpose.ROTATE_90), _box_map(lambda x, y, w, h: (y, w - x))),
    "rotate_180": (lambda im: im.transpose(Image.Transpose.ROTATE_180), _box_map(lambda x, y, w, h: (w - x, h - y))),
    "rotate_270": (lambda im: im.transpose(Image.Transpose.ROTATE_270), _box_map(lambda x, y, w, h: (h - y, x))),
    "transpose": (lambda im: im.transpose(Image.Transpose.TRANSPOSE), _box_map(lambda x, y, w, h: (y, x))),
    "crop_center": (_crop, _box_map(lambda x, y, w, h: (min(max(x - w // 10, 0), w - 2 * (w // 10)),
                                                        min(max(y - h // 10, 0), h - 2 * (h // 10))))),
    "scale_down": (lambda im: im.resize((max(1, im.width * 4 // 5), max(1, im.height * 4 // 5))),
                   _box_map(lambda x, y, w, h: (x * (max(1, w * 4 // 5) / w), y * (max(1, h * 4 // 5) / h)))),
    "translate": (_translate, _box_map(lambda x, y, w, h: (min(x + w // 10, w), min(y + h // 10, h)))),
    "brightness_up": (lambda im: ImageEnhance.Brightness(im).enhance(1.3), None),
    "brightness_down": (lambda im: ImageEnhance.Brightness(im).enhance(0.7), None),
    "contrast": (lambda im: ImageEnhance.Contrast(im).enhance(1.4), None),
    "saturation": (lambda im: ImageEnhance.Color(im).enhance(1.5), None),
    "sharpen": (lambda im: ImageEnhance.Sharpness(im).enhance(2.0), None),
    "gaussian_blur": (lambda im: im.filter(ImageFilter.GaussianBlur(2)), None),
    "gaussian_noise": (_noise, None),
    "grayscale": (lambda im: ImageOps.grayscale(im).convert("RGB"), None),
    "invert": (ImageOps.invert, None),
    "posterize": (lambda im: ImageOps.posterize(im, 3), None),
    "solarize": (lambda im: ImageOps.solarize(im, 128), None),
    "equalize": (ImageOps.equalize, None),
    "autocontrast": (ImageOps.autocontrast, None),
    "hue_shift": (_hue, None),
    "cutout": (_cutout, None),
}


def processing_start(*, user, dataset: Dataset, operation: str, threshold: int | None = None,
                     operators: list[str] | None = None, copies: int = 1) -> DatasetOperation:
    require_perm(user, dataset.workspace, "dataset:update")
    errors: dict[str, list[str]] = {}
    if dataset.data_type != DataType.IMAGE:
        errors["operation"] = ["Data processing is offered for image datasets."]
    if operation not in OPERATIONS:
        errors["operation"] = [f'"{operation}" is not a processing operation; choose {", ".join(OPERATIONS)}.']
    if operation == "dedupe" and (threshold is None or not 0 <= threshold <= 64):
        errors["threshold"] = ["The similarity threshold is 0–64 differing hash bits."]
    if operation == "augment":
        unknown = sorted(set(operators or []) - set(OPERATORS))
        if not operators:
            errors["operators"] = [f"Choose at least one operator: {', '.join(sorted(OPERATORS))}."]
        elif unknown:
            errors["operators"] = [f"Unknown operator(s): {', '.join(unknown)}."]
        if not 1 <= copies <= 10:
            errors["copies"] = ["Copies per image is 1–10."]
    if errors:
        raise ValidationError(errors)
    return operation_start(user=user, dataset=dataset, kind=OperationKind.PROCESSING, params={
        "operation": operation, "threshold": threshold, "operators": operators or [], "copies": copies})


def _images(dataset):
    return Sample.objects.filter(dataset=dataset).exclude(source="").order_by("created_at", "id")


def _validate(ctx: OperationContext, *, fix: bool) -> dict:
    dataset = ctx.dataset
    samples = list(_images(dataset))
    ctx.set_total(len(samples))
    bad_ids, clipped = [], 0
    for done, sample in enumerate(samples, start=1):
        if extension(sample.file_name) not in IMAGE_EXTENSIONS:
            ctx.error(sample.source, ErrorCode.UNSUPPORTED_EXTENSION, f'"{sample.file_name}" is not a JPG, PNG or BMP.')
            bad_ids.append(sample.pk)
            continue
        try:
            probe = probe_image(read_bytes(parse(sample.source)))
        except Problem as problem:
            ctx.error(sample.source, problem.code, problem.message)
            bad_ids.append(sample.pk)
            ctx.progress(done)
            continue
        for ann in sample.annotations.select_related("label"):
            spec = AnnSpec(label=ann.label.name if ann.label_id else "", shape=ann.shape, geometry=ann.geometry)
            message = out_of_bounds(spec, probe.width, probe.height)
            if message:
                ctx.error(sample.source, ErrorCode.BOX_OUT_OF_BOUNDS, message)
                if fix and ann.shape == Shape.BNDBOX:
                    g = ann.geometry
                    ann.geometry = {"xmin": max(0, min(g["xmin"], probe.width)),
                                    "ymin": max(0, min(g["ymin"], probe.height)),
                                    "xmax": max(0, min(g["xmax"], probe.width)),
                                    "ymax": max(0, min(g["ymax"], probe.height))}
                    ann.save(update_fields=["geometry", "updated_at"])
                    clipped += 1
        ctx.progress(done)
    removed = 0
    if fix and bad_ids:
        with transaction.atomic():
            removed = Sample.objects.filter(pk__in=bad_ids).delete()[1].get("datasets.Sample", 0)
        dataset_counts_refresh(dataset=dataset)
    return {"checked": len(samples), "invalid": len(bad_ids), "removed": removed, "clipped": clipped}


def _dedupe(ctx: OperationContext) -> dict:
    dataset = ctx.dataset
    samples = list(_images(dataset).filter(format_category=FormatCategory.IMAGE).values_list("pk", "source"))
    ctx.set_total(len(samples))
    ids, hashes = [], []
    for done, (pk, source) in enumerate(samples, start=1):
        try:
            hashes.append(dhash(read_bytes(parse(source))))
            ids.append(pk)
        except (Problem, OSError) as exc:
            ctx.error(source, ErrorCode.CORRUPT_IMAGE, getattr(exc, "message", str(exc)))
        ctx.progress(done)
    threshold = ctx.params["threshold"]
    values = np.array(hashes, dtype=np.uint64)
    removed: set[int] = set()
    for i in range(len(values)):
        if i in removed:
            continue
        xor = np.bitwise_xor(values[i + 1:], values[i])
        distance = np.unpackbits(xor.view(np.uint8).reshape(-1, 8), axis=1).sum(axis=1)
        for offset in np.nonzero(distance <= threshold)[0]:
            removed.add(i + 1 + int(offset))
    removed_ids = [ids[i] for i in sorted(removed)]
    with transaction.atomic():
        Sample.objects.filter(pk__in=removed_ids).delete()
    dataset_counts_refresh(dataset=dataset)
    return {"checked": len(ids), "removed": len(removed_ids), "threshold": threshold}


def _augment(ctx: OperationContext) -> dict:
    dataset, params = ctx.dataset, ctx.params
    detection = dataset.label_type == LabelType.OBJECT_DETECTION
    samples = list(_images(dataset).filter(format_category=FormatCategory.IMAGE).prefetch_related("annotations__label"))
    rng = random.Random(ctx.operation.pk)
    storage = get_storage()
    folder = parse(dataset.input_location).child("augmented").child(ctx.operation.uid)
    ctx.set_total(len(samples))
    ingestor = Ingestor(ctx)
    written = 0
    for done, sample in enumerate(samples, start=1):
        try:
            with Image.open(io.BytesIO(read_bytes(parse(sample.source)))) as im:
                image = im.convert("RGB")
        except (Problem, OSError) as exc:
            ctx.error(sample.source, ErrorCode.CORRUPT_IMAGE, getattr(exc, "message", str(exc)))
            continue
        for copy in range(params["copies"]):
            name = params["operators"][copy % len(params["operators"])] if params["copies"] > 1 else \
                rng.choice(params["operators"])
            transform, box_fn = OPERATORS[name]
            out = transform(image)
            annotations = []
            if detection:
                for ann in sample.annotations.all():
                    if ann.shape != Shape.BNDBOX or not ann.label_id:
                        continue
                    box = box_fn(ann.geometry, image.width, image.height) if box_fn else dict(ann.geometry)
                    annotations.append(AnnSpec(label=ann.label.name, type=dataset.label_type, shape=Shape.BNDBOX,
                                               geometry={k: round(v, 2) for k, v in box.items()},
                                               annotated_by=f"augment/{name}"))
            stem = sample.file_name.rsplit(".", 1)[0]
            target = folder.child(f"{stem}_{name}_{copy + 1}.jpg")
            buffer = io.BytesIO()
            out.save(buffer, "JPEG", quality=92)
            storage.save(target, io.BytesIO(buffer.getvalue()))
            ingestor.add(ImportItem(origin=sample.source, src=target, size=len(buffer.getvalue()),
                                    annotations=annotations))
            written += 1
        ctx.progress(done)
    counts = ingestor.finish()
    return {"written": written, "created": counts["created"], "folder": folder.uri}


def run_processing(ctx: OperationContext) -> dict:
    operation = ctx.params["operation"]
    if operation == "validate":
        return _validate(ctx, fix=False)
    if operation == "clean":
        return _validate(ctx, fix=True)
    if operation == "dedupe":
        return _dedupe(ctx)
    return _augment(ctx)



