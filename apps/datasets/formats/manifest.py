"""ModelArts manifests (spec §7): JSON Lines, one sample per line; reader and writer.

Reading is tolerant as the spec recommends (§14): `type` with or without `modelarts/`,
`usage` in any case, `hard` as bool or "true"/"false". Each malformed line is reported with
its number and the other lines still import. Writing keeps the `modelarts/` types and
`@modelarts:` keys so our manifests import into ModelArts unchanged.
"""
from __future__ import annotations

import datetime as dt
import functools
import json
from typing import Iterator

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from apps.core.storage import get_storage

from ..choices import ErrorCode, LabelKind, LabelType, Shape, Usage
from .items import AnnSpec, ImportItem, Problem, extension, read_label_file, resolve_source, walk
from .voc import parse_voc

PREFIX = "modelarts/"
# Membership tests run per line; TextChoices.values builds a new list on every access.
LABEL_TYPES = frozenset(LabelType.values)
USAGES = frozenset(Usage.values)
FILE_ANNOTATION_TYPES = {LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION}
TIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def _bool(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def _float(value) -> float | None:
    if value in (None, ""):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise Problem(ErrorCode.INVALID_VALUE, f"{value!r} is not a number.") from None


@functools.lru_cache(maxsize=4096)
def _time(value) -> dt.datetime | None:
    """Parsed creation-time; cached because a manifest repeats a few timestamps many times."""
    if not value:
        return None
    try:
        moment = dt.datetime.strptime(str(value), TIME_FORMAT)
    except ValueError:
        raise Problem(ErrorCode.INVALID_VALUE, f'creation-time "{value}" is not yyyy-MM-dd HH:mm:ss.') from None
    return timezone.make_aware(moment)


def seconds_of(clock: str) -> float:
    """`hh:mm:ss.SSS` → seconds."""
    try:
        hours, minutes, seconds = str(clock).split(":")
        return round(int(hours) * 3600 + int(minutes) * 60 + float(seconds), 3)
    except ValueError:
        raise Problem(ErrorCode.INVALID_VALUE, f'"{clock}" is not a time of the form hh:mm:ss.SSS.') from None


def clock_of(seconds: float) -> str:
    millis = int(round(seconds * 1000))
    return f"{millis // 3600000:02d}:{millis // 60000 % 60:02d}:{millis // 1000 % 60:02d}.{millis % 1000:03d}"


def _annotations(raw: list, base, label_type: str) -> tuple[list[AnnSpec], int | None, int | None]:
    specs: list[AnnSpec] = []
    width = height = None
    for index, ann in enumerate(raw, start=1):
        if not isinstance(ann, dict):
            raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} is not an object.")
        kind = str(ann.get("type") or "").removeprefix(PREFIX)
        if kind not in LABEL_TYPES:
            raise Problem(ErrorCode.MALFORMED_LINE, f'annotation {index} has the unknown type "{ann.get("type")}".')
        by = str(ann.get("annotated-by") or "human")
        common = dict(
            type=kind, annotated_by=by, source="human" if by == "human" else "model",
            confidence=_float(ann.get("confidence")), hard=_bool(ann.get("hard", False)),
            hard_coefficient=_float(ann.get("hard-coefficient")), created_at=_time(str(ann.get("creation-time") or "")),
        )
        prop = ann.get("property") or {}
        if not isinstance(prop, dict):
            raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index}: property is not an object.")
        name = str(ann.get("name") or "").strip()
        if kind in FILE_ANNOTATION_TYPES or (ann.get("annotation-loc") and kind != LabelType.TEXT_CLASSIFICATION):
            loc = ann.get("annotation-loc")
            if not loc:
                raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} ({kind}) needs annotation-loc.")
            try:
                path = resolve_source(str(loc), base)
            except ValidationError as exc:
                raise Problem(ErrorCode.MISSING_SOURCE, f"annotation-loc: {exc.messages[0]}") from None
            if not get_storage().exists(path):
                raise Problem(ErrorCode.MISSING_SOURCE, f"annotation-loc {loc} does not exist.")
            doc = parse_voc(read_label_file(path), label_type=kind)
            width, height = doc["width"], doc["height"]
            for obj in doc["objects"]:
                obj.annotated_by, obj.source, obj.created_at = by, common["source"], common["created_at"]
                obj.confidence = obj.confidence if obj.confidence is not None else common["confidence"]
                specs.append(obj)
            continue
        if kind in (LabelType.IMAGE_CLASSIFICATION, LabelType.TEXT_CLASSIFICATION, LabelType.SOUND_CLASSIFICATION):
            if not name:
                raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} ({kind}) needs a name.")
            specs.append(AnnSpec(label=name, properties=prop, **common))
        elif kind == LabelType.NAMED_ENTITY:
            try:
                span = {"start": int(prop["@modelarts:start_index"]), "end": int(prop["@modelarts:end_index"])}
            except (KeyError, TypeError, ValueError):
                raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} (text_entity) needs integer "
                                                        "@modelarts:start_index and @modelarts:end_index.") from None
            specs.append(AnnSpec(label=name, shape=Shape.SPAN, geometry=span, properties=prop,
                                 ref_id=str(ann.get("id") or ""), label_kind=LabelKind.ENTITY, **common))
        elif kind == LabelType.TEXT_TRIPLET:
            if not ann.get("id") or "@modelarts:from" not in prop or "@modelarts:to" not in prop:
                raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} (text_triplet) needs id, "
                                                        "@modelarts:from and @modelarts:to.")
            specs.append(AnnSpec(label=name, shape=Shape.RELATION,
                                 geometry={"from": prop["@modelarts:from"], "to": prop["@modelarts:to"]},
                                 properties=prop, ref_id=str(ann["id"]), label_kind=LabelKind.RELATION, **common))
        elif kind == LabelType.SPEECH_SEGMENTATION:
            try:
                segment = {"start": seconds_of(prop["@modelarts:start_time"]),
                           "end": seconds_of(prop["@modelarts:end_time"])}
            except KeyError:
                raise Problem(ErrorCode.MALFORMED_LINE, f"annotation {index} (audio_segmentation) needs "
                                                        "@modelarts:start_time and @modelarts:end_time.") from None
            specs.append(AnnSpec(label=name, shape=Shape.SEGMENT, geometry=segment, properties=prop, **common))
        else:  # audio_content and other whole-sample annotations
            specs.append(AnnSpec(label=name, properties=prop, **common))
    return specs, width, height


def parse_line(line: str, number: int, base, label_type: str) -> ImportItem:
    try:
        doc = json.loads(line)
    except json.JSONDecodeError as exc:
        raise Problem(ErrorCode.MALFORMED_LINE, f"Line {number} is not valid JSON: {exc.msg} (column {exc.colno}).")
    if not isinstance(doc, dict):
        raise Problem(ErrorCode.MALFORMED_LINE, f"Line {number} is not a JSON object.")
    source = doc.get("source")
    if not isinstance(source, str) or not source.strip():
        raise Problem(ErrorCode.MALFORMED_LINE, f'Line {number} has no "source".')
    usage = str(doc.get("usage") or "").upper()
    if usage not in USAGES:
        raise Problem(ErrorCode.INVALID_VALUE, f'usage "{doc.get("usage")}" is not TRAIN, EVAL, TEST or INFERENCE.')
    annotations, width, height = [], None, None
    if doc.get("annotation"):
        annotations, width, height = _annotations(doc["annotation"], base, label_type)
    properties = doc.get("property") or {}
    if not isinstance(properties, dict):
        raise Problem(ErrorCode.MALFORMED_LINE, f'Line {number}: "property" is not a JSON object.')
    properties = dict(properties)
    if doc.get("inference-loc"):
        properties["inference-loc"] = doc["inference-loc"]
    item = ImportItem(origin="", line=number, usage=usage, hard=_bool(doc.get("hard", False)),
                      hard_coefficient=_float(doc.get("hard-coefficient")), properties=properties,
                      sample_id=str(doc.get("id") or ""), annotations=annotations, width=width, height=height,
                      probe=False)
    if source.startswith("content://"):
        item.text = source[len("content://"):]
    else:
        try:
            item.src = resolve_source(source, base)
        except ValidationError as exc:
            raise Problem(ErrorCode.MISSING_SOURCE, f'source "{source[:120]}": {exc.messages[0]}') from None
        item.rel = item.src.key
    return item


def _manifest_files(root) -> list:
    storage = get_storage()
    if storage.is_folder(root):
        return [path for path, info, rel in walk(root) if extension(rel) == ".manifest"]
    return [root]


def _lines(path) -> Iterator[tuple[int, str]]:
    """Lines of a manifest, streamed; a line that is not UTF-8 is yielded as None."""
    storage = get_storage()
    size = storage.stat(path).size
    limit = settings.ATELIER_DATASET_MAX_MANIFEST_BYTES
    if size > limit:
        raise Problem(ErrorCode.FILE_TOO_LARGE, f"The manifest has {size} bytes; at most {limit} are allowed.")
    with storage.open(path) as fh:
        for number, raw in enumerate(fh, start=1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None


def read_manifest(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_type = ingestor.dataset.label_type
    for path in _manifest_files(root):
        base = path.parent
        try:
            for number, line in _lines(path):
                if line is None:
                    ctx.error(path.uri, ErrorCode.ENCODING_ERROR, f"Line {number} is not UTF-8.", line=number)
                    continue
                if not line.strip():
                    continue
                try:
                    item = parse_line(line, number, base, label_type)
                except Problem as problem:
                    ctx.error(path.uri, problem.code, problem.message, line=number)
                    continue
                item.origin = path.uri
                yield item
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message)


# ---- writing ------------------------------------------------------------------------------------------------


def _hard(value: bool) -> str:
    return "true" if value else "false"


def annotation_entry(ann: dict, *, hard_attribute: bool) -> dict:
    """One manifest annotation for a non-file annotation (classes, spans, relations, segments, transcripts)."""
    kind = ann["type"]
    entry: dict = {"type": PREFIX + kind}
    if ann.get("label"):
        entry["name"] = ann["label"]
    if ann.get("ref_id"):
        entry["id"] = ann["ref_id"]
    prop = dict(ann.get("properties") or {})
    geometry = ann.get("geometry") or {}
    if ann["shape"] == Shape.SPAN:
        prop.update({"@modelarts:start_index": geometry["start"], "@modelarts:end_index": geometry["end"]})
    elif ann["shape"] == Shape.RELATION:
        prop.update({"@modelarts:from": geometry["from"], "@modelarts:to": geometry["to"]})
    elif ann["shape"] == Shape.SEGMENT:
        prop.update({"@modelarts:start_time": clock_of(geometry["start"]),
                     "@modelarts:end_time": clock_of(geometry["end"])})
    if prop:
        entry["property"] = prop
    if hard_attribute:
        entry["hard"] = _hard(bool(ann.get("hard")))
        if ann.get("hard_coefficient") is not None:
            entry["hard-coefficient"] = ann["hard_coefficient"]
    entry["annotated-by"] = ann.get("annotated_by") or "human"
    if ann.get("confidence") is not None:
        entry["confidence"] = ann["confidence"]
    entry["creation-time"] = ann["created_at"].astimezone(dt.timezone.utc).strftime(TIME_FORMAT) \
        if isinstance(ann.get("created_at"), dt.datetime) else str(ann.get("created_at") or "")
    return entry


def sample_line(sample: dict, annotations: list[dict], *, source: str, hard_attribute: bool,
                annotation_loc: str = "", sample_type: int | None = None) -> str:
    """One manifest line. With `annotation_loc`, shapes are referenced through their VOC file."""
    doc: dict = {"source": source}
    if sample.get("usage"):
        doc["usage"] = sample["usage"]
    doc["id"] = sample["id"]
    if sample_type is not None:
        doc["sample-type"] = sample_type
    if hard_attribute:
        doc["hard"] = _hard(bool(sample.get("hard")))
        if sample.get("hard_coefficient") is not None:
            doc["hard-coefficient"] = sample["hard_coefficient"]
    entries = []
    shaped = [a for a in annotations if a["shape"] in (Shape.BNDBOX, Shape.POLYGON, Shape.POINT, Shape.LINE,
                                                        Shape.CIRCLE)]
    if annotation_loc and shaped:
        first = shaped[0]
        entry = {"annotation-format": "PASCAL VOC", "type": PREFIX + first["type"], "annotation-loc": annotation_loc,
                 "annotated-by": first.get("annotated_by") or "human"}
        created = first.get("created_at")
        entry["creation-time"] = created.astimezone(dt.timezone.utc).strftime(TIME_FORMAT) \
            if isinstance(created, dt.datetime) else ""
        entries.append(entry)
    for ann in annotations:
        if ann in shaped and annotation_loc:
            continue
        entries.append(annotation_entry(ann, hard_attribute=hard_attribute))
    if entries:
        doc["annotation"] = entries
    properties = dict(sample.get("properties") or {})
    inference = properties.pop("inference-loc", None)
    properties.pop("mask_source", None)
    if properties:
        doc["property"] = properties
    if inference:
        doc["inference-loc"] = inference
    return json.dumps(doc, ensure_ascii=False)
