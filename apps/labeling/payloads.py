"""The annotation payload of a save: parsed, checked and normalised per labeling type.

A payload is a list of JSON objects, one per annotation (see `docs` in `api/views.py`):

    {"id": 12,                       # optional: an annotation of this sample being kept
     "label": "cat",                  # label name (case-sensitive) or "label_id": 3
     "shape": "bndbox",               # bndbox | polygon | circle | line | point | span | relation | segment | none
     "geometry": {...},               # pixels for shapes, characters for spans, seconds for segments
     "style": "dashed",               # lines only
     "attributes": {"color": "white"},# values of the label's attribute definitions
     "ref_id": "E1",                  # triplet entities E#, relations R#; segments S#
     "content": "...",                # speech content, or a segment's transcript
     "labels": {"speaker": "Tom"}}    # speech segmentation in multi-label mode: one label per category

Shapes are clamped into the image (spec §5, FAQ 14.2.14: nothing may leave the image) and
refused when degenerate after clamping. Every refusal names the annotation, the field and the
rule, e.g. `annotations.2.geometry: The box has zero area after clamping to the 640×480 image.`
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from django.conf import settings
from django.core.exceptions import ValidationError

from apps.datasets.choices import LINE_STYLE_KEY, LabelKind, LabelType, Shape
from apps.datasets.models import Annotation, Label, Sample

from .choices import CLASS_TYPES, SpeechLabelMode

# LINE_STYLE_KEY (the dashed-line flag) lives with the datasets' shapes, which VOC and manifests write.
CONTENT_KEY = "@modelarts:content"
MAX_CONTENT = 10_000  # characters of one transcript; a 30-minute recording transcribes to ~5,000
MAX_ANNOTATIONS = 20_000  # per sample: ten times the busiest canvas we benchmark
MAX_POINTS = 10_000  # vertices of one polygon
# Audio labels and transcripts: Chinese and English only (spec §10), letters, digits, spaces and punctuation.
AUDIO_TEXT_RE = re.compile(r"^[\u0020-\u007e\u00a0\u2010-\u2027\u3000-\u303f\u4e00-\u9fff\uff00-\uffef\n\t]*$")
REF_RE = {"E": re.compile(r"^E[1-9]\d{0,5}$"), "R": re.compile(r"^R[1-9]\d{0,5}$"), "S": re.compile(r"^S[1-9]\d{0,5}$")}
IMAGE_SHAPES = {Shape.BNDBOX, Shape.POLYGON, Shape.CIRCLE, Shape.LINE, Shape.POINT}
# PASCAL VOC's per-object fields (spec §7.6): every shape may carry them, whatever its label defines.
VOC_FLAGS = ("pose", "truncated", "occluded", "difficult")


@dataclass
class Row:
    """One checked annotation, ready to become a `datasets.Annotation`."""

    label: Label | None
    shape: str
    geometry: dict
    properties: dict = field(default_factory=dict)
    ref_id: str = ""
    keep_id: int | None = None  # the existing annotation this row continues, if any


class PayloadError(ValidationError):
    pass


def audio_text_check(text: str, what: str) -> None:
    """Spec §10 / item 43: Chinese and English only, unless ATELIER_LABELING_AUDIO_ZH_EN_ONLY is off."""
    if settings.ATELIER_LABELING_AUDIO_ZH_EN_ONLY and not AUDIO_TEXT_RE.match(text or ""):
        bad = next(ch for ch in text if not AUDIO_TEXT_RE.match(ch))
        raise ValidationError(f'{what} may contain only Chinese and English text; "{bad}" is neither.')


def _number(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise PayloadError({where: [f"{value!r} is not a number."]})
    return float(value)


def _voc_flag(name: str, value, where: str):
    """`pose` is a short text; truncated/occluded/difficult are 0 or 1 (as VOC writes them)."""
    if name == "pose":
        if not isinstance(value, str) or len(value) > 64:
            raise PayloadError({where: ['"pose" is a text of at most 64 characters, e.g. "Unspecified".']})
        return value
    if value in (0, 1, "0", "1") and not isinstance(value, bool):
        return int(value)
    raise PayloadError({where: [f'"{name}" is 0 or 1, not {value!r}.']})


def _r(value: float) -> float:
    """Two decimals are a hundredth of a pixel: finer than any display, and stable in JSON."""
    value = round(value, 2)
    return int(value) if value.is_integer() else value


class PayloadParser:
    """Checks one sample's payload against the job's type, its labels and the sample itself."""

    def __init__(self, *, job, sample: Sample, labels: list[Label]):
        self.job = job
        self.sample = sample
        self.type = job.labeling_type
        self.by_name = {label.name: label for label in labels}
        self.by_id = {label.pk: label for label in labels}
        self.width = sample.width or 0
        self.height = sample.height or 0
        self._keep_id: int | None = None  # the annotation the item being parsed continues
        self._stored: dict[int, dict] | None = None  # its stored properties, read only when needed

    # ---- entry point -------------------------------------------------------------------------

    def parse(self, items) -> list[Row]:
        if not isinstance(items, list):
            raise PayloadError({"annotations": ["Send a list of annotations (an empty list clears the sample)."]})
        if len(items) > MAX_ANNOTATIONS:
            raise PayloadError({"annotations": [f"A sample holds at most {MAX_ANNOTATIONS} annotations; "
                                                f"this save has {len(items)}."]})
        rows: list[Row] = []
        for index, item in enumerate(items):
            where = f"annotations.{index}"
            if not isinstance(item, dict):
                raise PayloadError({where: ["Each annotation is a JSON object."]})
            rows.extend(self._item(item, where))
        if self.type == LabelType.TEXT_TRIPLET:
            self._check_relations(rows, items)
        if self.type in CLASS_TYPES:
            rows = self._dedupe_classes(rows)
        if self.type == LabelType.SPEECH_CONTENT and len(rows) > 1:
            raise PayloadError({"annotations": ["A speech-content sample has one transcript; this save has "
                                                f"{len(rows)}."]})
        return rows

    def _item(self, item: dict, where: str) -> list[Row]:
        keep = item.get("id")
        keep_id = keep if isinstance(keep, int) and not isinstance(keep, bool) else None
        handler = {
            LabelType.IMAGE_CLASSIFICATION: self._class,
            LabelType.TEXT_CLASSIFICATION: self._class,
            LabelType.SOUND_CLASSIFICATION: self._class,
            LabelType.OBJECT_DETECTION: self._shape,
            LabelType.VIDEO: self._shape,
            LabelType.IMAGE_SEGMENTATION: self._shape,
            LabelType.NAMED_ENTITY: self._span,
            LabelType.TEXT_TRIPLET: self._triplet,
            LabelType.SPEECH_CONTENT: self._content,
            LabelType.SPEECH_SEGMENTATION: self._segment,
        }.get(self.type)
        if handler is None:
            raise PayloadError({where: [f"{self.type} datasets cannot be labeled."]})
        self._keep_id = keep_id
        rows = handler(item, where)
        for row in rows:
            row.keep_id = keep_id
        return rows

    # ---- labels and attributes ---------------------------------------------------------------

    def _label(self, item: dict, where: str, *, kinds=(LabelKind.CLASS, LabelKind.ENTITY)) -> Label:
        if item.get("label_id") not in (None, ""):
            label = self.by_id.get(item["label_id"]) if isinstance(item["label_id"], int) else None
            if label is None:
                raise PayloadError({f"{where}.label_id": [f"Label {item['label_id']!r} is not a label of this job."]})
        else:
            name = item.get("label")
            if not isinstance(name, str) or not name:
                raise PayloadError({f"{where}.label": ["Name the label of this annotation."]})
            label = self.by_name.get(name)
            if label is None:
                raise PayloadError({f"{where}.label": [
                    f'The label "{name[:80]}" does not exist in this job; add it to the label set first '
                    "(names are case-sensitive)."]})
        if label.kind not in kinds:
            wanted = " or ".join(k.label.lower() for k in kinds)
            raise PayloadError({f"{where}.label": [f'"{label.name}" is a {label.get_kind_display().lower()} label; '
                                                   f"this annotation needs a {wanted} label."]})
        return label

    def _attributes(self, item: dict, label: Label, where: str) -> dict:
        raw = item.get("attributes") or {}
        if not isinstance(raw, dict):
            raise PayloadError({f"{where}.attributes": ["Attributes are an object of name → value."]})
        defined = {a["name"]: a.get("values") or [] for a in (label.attributes or [])}
        out = {}
        for name, value in raw.items():
            if name in VOC_FLAGS:
                try:
                    out[name] = _voc_flag(name, value, f"{where}.attributes")
                except PayloadError:
                    if not self._carried(name, value):
                        raise
                    out[name] = value  # as imported, e.g. a manifest's "truncated": "false"
                continue
            if name not in defined:
                if self._carried(name, value):
                    out[name] = value
                    continue
                known = ", ".join(sorted(defined)) or "none"
                raise PayloadError({f"{where}.attributes": [
                    f'"{label.name}" has no attribute "{name}"; its attributes: {known}.']})
            if value in (None, ""):
                continue
            if not isinstance(value, (str, int, float)) or isinstance(value, bool):
                raise PayloadError({f"{where}.attributes": [f'The value of "{name}" must be text or a number.']})
            if defined[name] and str(value) not in defined[name]:
                if self._carried(name, value):
                    out[name] = value
                    continue
                raise PayloadError({f"{where}.attributes": [
                    f'"{value}" is not a value of "{name}"; choose one of {", ".join(defined[name])}.']})
            out[name] = str(value)
        return out

    def _carried(self, name: str, value) -> bool:
        """True when the annotation being kept already stores exactly this attribute value.

        Imported data (VOC `<attributes>`, manifest `property`) may carry attributes the label set
        does not define; sending them back unchanged keeps them, while new names and values must
        follow the label's definitions. The stored rows are read once, and only on this path.
        """
        if self._keep_id is None:
            return False
        if self._stored is None:
            self._stored = dict(Annotation.objects.filter(sample_id=self.sample.pk).values_list("pk", "properties"))
        stored = self._stored.get(self._keep_id) or {}
        return name in stored and stored[name] == value

    # ---- whole-sample classes ----------------------------------------------------------------

    def _class(self, item: dict, where: str) -> list[Row]:
        label = self._label(item, where, kinds=(LabelKind.CLASS,))
        return [Row(label=label, shape=Shape.NONE, geometry={})]

    @staticmethod
    def _dedupe_classes(rows: list[Row]) -> list[Row]:
        seen, out = set(), []
        for row in rows:
            if row.label.pk not in seen:
                seen.add(row.label.pk)
                out.append(row)
        return out

    # ---- image shapes ------------------------------------------------------------------------

    def _shape(self, item: dict, where: str) -> list[Row]:
        label = self._label(item, where)
        shape = item.get("shape")
        allowed = {Shape.POLYGON} if self.type == LabelType.IMAGE_SEGMENTATION else IMAGE_SHAPES
        if shape not in allowed:
            names = ", ".join(sorted(allowed))
            raise PayloadError({f"{where}.shape": [f'"{shape}" is not a shape of this job; use {names}.']})
        geometry = item.get("geometry")
        if not isinstance(geometry, dict):
            raise PayloadError({f"{where}.geometry": ["The geometry is an object (see the API reference)."]})
        if not self.width or not self.height:
            raise PayloadError({f"{where}.geometry": [
                "This sample's image size is unknown, so shapes cannot be checked against it; re-import the image."]})
        geo_where = f"{where}.geometry"
        geometry = {
            Shape.BNDBOX: self._bndbox, Shape.POLYGON: self._polygon, Shape.CIRCLE: self._circle,
            Shape.LINE: self._line, Shape.POINT: self._point,
        }[shape](geometry, geo_where)
        properties = self._attributes(item, label, where)
        style = item.get("style") or "solid"
        if style not in ("solid", "dashed"):
            raise PayloadError({f"{where}.style": [f'"{style}" is not a line style; use solid or dashed.']})
        if style == "dashed":
            if shape != Shape.LINE:
                raise PayloadError({f"{where}.style": ["Only lines can be dashed."]})
            properties[LINE_STYLE_KEY] = "dashed"
        return [Row(label=label, shape=shape, geometry=geometry, properties=properties)]

    def _clamp_x(self, x: float) -> float:
        return min(max(x, 0.0), float(self.width))

    def _clamp_y(self, y: float) -> float:
        return min(max(y, 0.0), float(self.height))

    @property
    def _size(self) -> str:
        return f"{self.width}×{self.height}"

    def _pair(self, point, where: str) -> tuple[float, float]:
        if not isinstance(point, (list, tuple)) or len(point) != 2:
            raise PayloadError({where: [f"{point!r} is not a point [x, y]."]})
        return _number(point[0], where), _number(point[1], where)

    def _bndbox(self, g: dict, where: str) -> dict:
        try:
            xmin, ymin, xmax, ymax = (_number(g[k], f"{where}.{k}") for k in ("xmin", "ymin", "xmax", "ymax"))
        except KeyError as exc:
            raise PayloadError({where: [f"A box needs xmin, ymin, xmax and ymax; {exc.args[0]} is missing."]}) from None
        if xmin > xmax or ymin > ymax:
            raise PayloadError({where: ["A box has xmin ≤ xmax and ymin ≤ ymax."]})
        box = [self._clamp_x(xmin), self._clamp_y(ymin), self._clamp_x(xmax), self._clamp_y(ymax)]
        if box[2] - box[0] <= 0 or box[3] - box[1] <= 0:
            outside = xmax <= 0 or ymax <= 0 or xmin >= self.width or ymin >= self.height
            reason = f"lies outside the {self._size} image" if outside else "has zero area"
            raise PayloadError({where: [f"The box {reason}; a box needs a width and a height inside the image."]})
        return dict(zip(("xmin", "ymin", "xmax", "ymax"), (_r(v) for v in box)))

    def _points(self, g: dict, where: str, minimum: int, what: str) -> list[list[float]]:
        points = g.get("points")
        if not isinstance(points, list):
            raise PayloadError({where: [f"A {what} needs points: [[x, y], …]."]})
        if len(points) > MAX_POINTS:
            raise PayloadError({where: [f"A {what} has at most {MAX_POINTS} points."]})
        pairs = [self._pair(p, f"{where}.points.{i}") for i, p in enumerate(points)]
        clamped = [[_r(self._clamp_x(x)), _r(self._clamp_y(y))] for x, y in pairs]
        distinct = {tuple(p) for p in clamped}
        if len(distinct) < minimum:
            raise PayloadError({where: [f"A {what} needs at least {minimum} distinct points inside the image; "
                                        f"this one has {len(distinct)}."]})
        return clamped

    def _polygon(self, g: dict, where: str) -> dict:
        points = self._points(g, where, 3, "polygon")
        if len(points) > 3 and points[0] == points[-1]:
            points = points[:-1]  # a closing vertex repeating the first adds nothing
        area = 0.5 * abs(sum(x1 * y2 - x2 * y1 for (x1, y1), (x2, y2) in zip(points, points[1:] + points[:1])))
        if area <= 0:
            raise PayloadError({where: ["The polygon has zero area (its points are on one line) inside the image."]})
        return {"points": points}

    def _line(self, g: dict, where: str) -> dict:
        return {"points": self._points(g, where, 2, "line")}

    def _point(self, g: dict, where: str) -> dict:
        try:
            x, y = _number(g["x"], f"{where}.x"), _number(g["y"], f"{where}.y")
        except KeyError as exc:
            raise PayloadError({where: [f"A point needs x and y; {exc.args[0]} is missing."]}) from None
        return {"x": _r(self._clamp_x(x)), "y": _r(self._clamp_y(y))}

    def _circle(self, g: dict, where: str) -> dict:
        try:
            cx, cy, r = (_number(g[k], f"{where}.{k}") for k in ("cx", "cy", "r"))
        except KeyError as exc:
            raise PayloadError({where: [f"A circle needs cx, cy and r; {exc.args[0]} is missing."]}) from None
        if not (0 <= cx <= self.width and 0 <= cy <= self.height):
            raise PayloadError({where: [f"The circle's centre ({_r(cx)}, {_r(cy)}) is outside the {self._size} image."]})
        # The circle may not cross the image edge: its radius shrinks to the nearest edge.
        r = min(r, cx, cy, self.width - cx, self.height - cy)
        if r <= 0:
            raise PayloadError({where: ["The circle has a zero radius inside the image."]})
        return {"cx": _r(cx), "cy": _r(cy), "r": _r(r)}

    # ---- text --------------------------------------------------------------------------------

    def _span_geometry(self, item: dict, where: str) -> dict:
        g = item.get("geometry")
        if not isinstance(g, dict):
            raise PayloadError({f"{where}.geometry": ["A span is {\"start\": int, \"end\": int} (end exclusive)."]})
        start, end = g.get("start"), g.get("end")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end)):
            raise PayloadError({f"{where}.geometry": ["Span offsets are whole character positions."]})
        length = len(self.sample.text)
        if start < 0 or end > length:
            raise PayloadError({f"{where}.geometry": [
                f"The span {start}–{end} lies beyond the text, which has {length} characters (offsets 0–{length})."]})
        if end <= start:
            raise PayloadError({f"{where}.geometry": [f"The span {start}–{end} is empty; its end comes after its start."]})
        return {"start": start, "end": end}

    def _span(self, item: dict, where: str) -> list[Row]:
        label = self._label(item, where)
        return [Row(label=label, shape=Shape.SPAN, geometry=self._span_geometry(item, where))]

    def _triplet(self, item: dict, where: str) -> list[Row]:
        shape = item.get("shape")
        ref = item.get("ref_id")
        if shape == Shape.SPAN:
            label = self._label(item, where, kinds=(LabelKind.ENTITY,))
            if not isinstance(ref, str) or not REF_RE["E"].match(ref):
                raise PayloadError({f"{where}.ref_id": [f'An entity needs an id "E" + number, like E1; got {ref!r}.']})
            return [Row(label=label, shape=Shape.SPAN, geometry=self._span_geometry(item, where), ref_id=ref)]
        if shape == Shape.RELATION:
            label = self._label(item, where, kinds=(LabelKind.RELATION,))
            if not isinstance(ref, str) or not REF_RE["R"].match(ref):
                raise PayloadError({f"{where}.ref_id": [f'A relation needs an id "R" + number, like R1; got {ref!r}.']})
            g = item.get("geometry") or {}
            if not isinstance(g, dict) or not isinstance(g.get("from"), str) or not isinstance(g.get("to"), str):
                raise PayloadError({f"{where}.geometry": ['A relation is {"from": "E1", "to": "E2"}.']})
            return [Row(label=label, shape=Shape.RELATION, geometry={"from": g["from"], "to": g["to"]}, ref_id=ref)]
        raise PayloadError({f"{where}.shape": [f'"{shape}" is not a triplet shape; use span (entity) or relation.']})

    def _check_relations(self, rows: list[Row], items: list) -> None:
        entities: dict[str, Row] = {}
        seen: set[str] = set()
        for index, row in enumerate(rows):
            if row.ref_id in seen:
                raise PayloadError({f"annotations.{index}.ref_id": [f"The id {row.ref_id} is used twice."]})
            seen.add(row.ref_id)
            if row.shape == Shape.SPAN:
                entities[row.ref_id] = row
        for index, row in enumerate(rows):
            if row.shape != Shape.RELATION:
                continue
            where = f"annotations.{index}.geometry"
            ends = []
            for end in ("from", "to"):
                entity = entities.get(row.geometry[end])
                if entity is None:
                    raise PayloadError({where: [f'The relation\'s "{end}" names {row.geometry[end]}, which is not an '
                                                "entity of this save."]})
                ends.append(entity)
            if ends[0] is ends[1]:
                raise PayloadError({where: ["A relation joins two different entities."]})
            label = row.label
            if ends[0].label.pk != label.from_label_id or ends[1].label.pk != label.to_label_id:
                start = self.by_id.get(label.from_label_id)
                stop = self.by_id.get(label.to_label_id)
                raise PayloadError({where: [
                    f'"{label.name}" goes from {start.name if start else "?"} to {stop.name if stop else "?"}; '
                    f"{row.geometry['from']} is {ends[0].label.name} and {row.geometry['to']} is {ends[1].label.name}."]})

    # ---- audio -------------------------------------------------------------------------------

    def _content_text(self, item: dict, where: str, *, required: bool) -> str:
        content = item.get("content")
        if content in (None, "") and not required:
            return ""
        if not isinstance(content, str) or not content.strip():
            raise PayloadError({f"{where}.content": ["Type the speech content."]})
        if len(content) > MAX_CONTENT:
            raise PayloadError({f"{where}.content": [f"The content has {len(content)} characters; at most "
                                                     f"{MAX_CONTENT} are allowed."]})
        try:
            audio_text_check(content, "The speech content")
        except ValidationError as exc:
            raise PayloadError({f"{where}.content": exc.messages}) from None
        return content.strip()

    def _content(self, item: dict, where: str) -> list[Row]:
        label = None
        if item.get("label") or item.get("label_id"):
            label = self._label(item, where, kinds=(LabelKind.CLASS,))
        return [Row(label=label, shape=Shape.NONE, geometry={},
                    properties={CONTENT_KEY: self._content_text(item, where, required=True)})]

    def _segment(self, item: dict, where: str) -> list[Row]:
        g = item.get("geometry")
        if not isinstance(g, dict):
            raise PayloadError({f"{where}.geometry": ['A segment is {"start": seconds, "end": seconds}.']})
        try:
            start, end = _number(g.get("start"), f"{where}.geometry.start"), _number(g.get("end"), f"{where}.geometry.end")
        except PayloadError:
            raise PayloadError({f"{where}.geometry": ["Segment start and end are numbers of seconds."]}) from None
        if start < 0:
            raise PayloadError({f"{where}.geometry": [f"The segment starts at {start} s, before the recording."]})
        if end <= start:
            raise PayloadError({f"{where}.geometry": [
                f"The segment ends at {end:g} s, before or at its start ({start:g} s); its end comes after its start."]})
        duration = self.sample.duration
        if duration and end > duration + 0.001:
            raise PayloadError({f"{where}.geometry": [
                f"The segment ends at {end:g} s, after the end of the {duration:g} s recording."]})
        ref = item.get("ref_id")
        if not isinstance(ref, str) or not REF_RE["S"].match(ref):
            raise PayloadError({f"{where}.ref_id": [f'A segment needs an id "S" + number, like S1; got {ref!r}.']})
        properties = {}
        if self.job.speech_content_enabled:
            content = self._content_text(item, where, required=False)
            if content:
                properties[CONTENT_KEY] = content
        elif item.get("content"):
            raise PayloadError({f"{where}.content": ["This job does not label speech content; turn it on in the job."]})
        geometry = {"start": round(start, 3), "end": round(end, 3)}
        if self.job.speech_label_mode == SpeechLabelMode.MULTI:
            chosen = item.get("labels")
            if not isinstance(chosen, dict) or not chosen:
                raise PayloadError({f"{where}.labels": ["Choose one label per category: {\"category\": \"label\"}."]})
            rows = []
            for category, name in chosen.items():
                label = self.by_name.get(name) if isinstance(name, str) else None
                if label is None or label.category != category:
                    raise PayloadError({f"{where}.labels": [f'"{name}" is not a label of the category "{category}".']})
                rows.append(Row(label=label, shape=Shape.SEGMENT, geometry=dict(geometry), properties=dict(properties),
                                ref_id=ref))
            return rows
        label = self._label(item, where, kinds=(LabelKind.CLASS,))
        return [Row(label=label, shape=Shape.SEGMENT, geometry=geometry, properties=properties, ref_id=ref)]
