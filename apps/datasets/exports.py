"""Export (spec §10): the selected or filtered samples, to a storage folder or as a new dataset.

Formats: the ModelArts default per label type (classification → same-name .txt labels,
detection → VOC XML, segmentation → VOC XML + masks), manifest, VOC, YOLO, COCO, CSV
(formula-escaped) and raw files. Images are copied next to their labels.
"""
from __future__ import annotations

import json

from django.core.exceptions import ValidationError
from django.http import QueryDict

from apps.core.paths import StoragePath, parse
from apps.core.permissions import require_perm
from apps.core.storage import NotFound

from .choices import (
    CLASSIFICATION_LABEL_TYPES,
    DataType,
    ExportFormat,
    ExportMethod,
    ImportFormat,
    LabelType,
    OperationKind,
    Shape,
)
from .bulk import gc_paused
from .files import FileAccess
from .formats.coco import coco_document
from .formats.manifest import sample_line
from .formats.table import csv_text
from .formats.voc import voc_xml
from .formats.yolo import yolo_line
from .models import Dataset, DatasetOperation, Label
from .operations import OperationContext, OperationFailed
from .selectors import FilterError, SampleFilter, samples_filtered
from .services import operation_start
from .validators import validate_dataset_name, validate_output_location
from .versions import SHAPES, iter_sample_chunks, mask_png, s3_uri

IMAGE_LABEL_TYPES = {LabelType.IMAGE_CLASSIFICATION, LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION}
# Which formats each label type may export to.
ALLOWED = {
    ExportFormat.DEFAULT: IMAGE_LABEL_TYPES | {LabelType.FREE_FORMAT},
    ExportFormat.VOC: {LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION},
    ExportFormat.YOLO: {LabelType.OBJECT_DETECTION},
    ExportFormat.COCO: {LabelType.OBJECT_DETECTION, LabelType.IMAGE_SEGMENTATION},
}
# How a "new dataset" export is read back in.
REIMPORT_FORMAT = {
    LabelType.IMAGE_CLASSIFICATION: ImportFormat.IMAGE_CLS_TXT,
    LabelType.OBJECT_DETECTION: ImportFormat.VOC,
    LabelType.IMAGE_SEGMENTATION: ImportFormat.VOC_SEG,
    LabelType.FREE_FORMAT: ImportFormat.RAW,
}


def export_start(*, user, dataset: Dataset, method: str, path: StoragePath, format: str = ExportFormat.DEFAULT,
                 filter_params: dict | None = None, name: str = "", output_path: StoragePath | None = None
                 ) -> DatasetOperation:
    """Validate an export request and start it. `filter_params` are the sample browser's query parameters."""
    require_perm(user, dataset.workspace, "dataset:export")
    errors: dict[str, list[str]] = {}
    if method not in ExportMethod.values:
        errors["method"] = [f'"{method}" is not an export method.']
    if format not in ExportFormat.values:
        errors["format"] = [f'"{format}" is not an export format.']
    elif format in ALLOWED and dataset.label_type not in ALLOWED[format]:
        errors["format"] = [f"{ExportFormat(format).label} export is not offered for "
                            f"{dataset.get_label_type_display().lower()} datasets."]
    elif format == ExportFormat.CSV and dataset.data_type == DataType.TABLE:
        errors["format"] = ["Table datasets are exported by publishing a CSV or Parquet version."]
    input_path, output_location = parse(dataset.input_location), parse(dataset.output_location)
    if path.is_within(input_path):
        errors["path"] = ["The save path cannot be the dataset's input location or inside it: a later sync would "
                          "import the exported files as new samples."]
    warnings = []
    if path.is_within(output_location):
        warnings.append("The save path is inside the dataset's output location.")
    params_filter = {}
    if filter_params:
        try:
            qd = filter_params if isinstance(filter_params, QueryDict) else _querydict(filter_params)
            SampleFilter.from_params(qd)
        except FilterError as exc:
            errors.update({f"filter.{k}": v for k, v in exc.fields.items()})
        params_filter = {k: list(v) for k, v in (qd.lists() if not errors else [])}
    if method == ExportMethod.NEW_DATASET:
        if dataset.label_type not in REIMPORT_FORMAT:
            errors["method"] = ["Export as a new dataset is offered for image and free-format datasets."]
        if format != ExportFormat.DEFAULT:
            errors["format"] = ["A new dataset is exported in the default format."]
        try:
            validate_dataset_name(name)
        except ValidationError as exc:
            errors["name"] = exc.messages
        else:
            if Dataset.objects.filter(workspace=dataset.workspace, name=name).exists():
                errors["name"] = [f'A dataset named "{name}" already exists in this workspace.']
        if output_path is None:
            errors["output_path"] = ["Choose the new dataset's output location."]
        else:
            try:
                validate_output_location(output_path, path)
            except ValidationError as exc:
                errors["output_path"] = exc.messages
    if errors:
        raise ValidationError(errors)
    params = {"method": method, "path": path.uri, "format": format, "filter": params_filter, "warnings": warnings}
    if method == ExportMethod.NEW_DATASET:
        params.update({"name": name, "output_path": output_path.uri})
    return operation_start(user=user, dataset=dataset, kind=OperationKind.EXPORT, params=params)


def _querydict(values: dict) -> QueryDict:
    qd = QueryDict(mutable=True)
    for key, value in values.items():
        for item in value if isinstance(value, (list, tuple)) else [value]:
            qd.appendlist(key, str(item))
    return qd


class Writer:
    """Copies files and writes texts below the export folder."""

    def __init__(self, target: StoragePath, dataset: Dataset):
        self.files = FileAccess()
        self.storage = self.files.storage
        self.target = target
        self.input = parse(dataset.input_location)

    def path(self, rel: str) -> StoragePath:
        return StoragePath(self.target.bucket, f"{self.target.key}/{rel}" if self.target.key else rel)

    def rel_of(self, src: StoragePath) -> str:
        if src.is_within(self.input) and src.key != self.input.key:
            return src.key[len(self.input.key) + 1:] if self.input.key else src.key
        return src.name

    def copy(self, src: StoragePath, rel: str) -> StoragePath:
        dest = self.path(rel)
        self.files.copy(src, dest)
        return dest

    def write(self, rel: str, data: bytes) -> StoragePath:
        dest = self.path(rel)
        self.files.write(dest, data)
        return dest

    def text(self, rel: str, content: str) -> StoragePath:
        return self.write(rel, content.encode("utf-8"))

COCO_SHAPES = frozenset({Shape.BNDBOX, Shape.POLYGON})


def _stem(rel: str) -> str:
    return rel.rsplit(".", 1)[0] if "." in rel.rpartition("/")[2] else rel


def run_export(ctx: OperationContext) -> dict:
    dataset, params = ctx.dataset, ctx.params
    target = parse(params["path"])
    fmt = params.get("format", ExportFormat.DEFAULT)
    flt = SampleFilter.from_params(_querydict(params.get("filter") or {}))
    samples = samples_filtered(dataset, flt)
    total = samples.count()
    ctx.set_total(total)
    writer = Writer(target, dataset)
    writer.storage.mkdir(target)
    label_type = dataset.label_type
    if fmt == ExportFormat.DEFAULT:
        fmt = {LabelType.IMAGE_CLASSIFICATION: "txt", LabelType.OBJECT_DETECTION: ExportFormat.VOC,
               LabelType.IMAGE_SEGMENTATION: ExportFormat.VOC, LabelType.FREE_FORMAT: ExportFormat.RAW}[label_type]
    labels = list(Label.objects.filter(dataset=dataset).order_by("id").values_list("name", flat=True))
    state = {"coco_images": [], "coco_annotations": [], "manifest": [], "csv": [], "yolo": {"train": [], "valid": []}}
    exported = 0
    with gc_paused():
        for chunk in iter_sample_chunks(samples):
            for sample, annotations in chunk:
                try:
                    _export_one(writer, fmt, dataset, sample, annotations, labels, state)
                except NotFound as exc:
                    ctx.error(sample["source"] or sample["id"], "MISSING_SOURCE", str(exc))
                    continue
                exported += 1
            ctx.progress(exported)
        files = _finish(writer, fmt, dataset, labels, state)
    result = {"exported": exported, "path": target.uri, "format": fmt, "files": files,
              "warnings": params.get("warnings", [])}
    if params.get("method") == ExportMethod.NEW_DATASET:
        result["new_dataset"] = _new_dataset(ctx, target)
    return result


def _export_one(writer: Writer, fmt: str, dataset: Dataset, sample: dict, annotations: list[dict],
                labels: list[str], state: dict) -> None:
    shaped = [a for a in annotations if a["shape"] in SHAPES]
    if not sample["source"]:  # inline text samples are exported as rows
        state["csv"].append(sample | {"labels": annotations})
        state["manifest"].append(sample_line(sample, annotations, source="content://" + sample["text"],
                                             hard_attribute=False))
        return
    src = parse(sample["source"])
    rel = writer.rel_of(src)
    if fmt == ExportFormat.YOLO:
        subset = "valid" if sample["usage"] == "EVAL" else "train"
        image_rel = f"obj_{subset}_data/{rel}"
        writer.copy(src, image_rel)
        lines = [yolo_line(labels.index(a["label"]), a["geometry"], sample["width"], sample["height"])
                 for a in shaped if a["shape"] == Shape.BNDBOX and sample["width"] and sample["height"]]
        writer.text(_stem(image_rel) + ".txt", "\n".join(lines) + ("\n" if lines else ""))
        state["yolo"][subset].append(image_rel)
        return
    if fmt == ExportFormat.COCO:
        writer.copy(src, f"images/{rel}")
        image_id = len(state["coco_images"]) + 1
        state["coco_images"].append({"id": image_id, "file_name": rel, "width": sample["width"] or 0,
                                     "height": sample["height"] or 0})
        for a in shaped:
            if a["shape"] in COCO_SHAPES:
                a["image_id"] = image_id  # the dicts are this export's own copies
                state["coco_annotations"].append(a)
        return
    dest = writer.copy(src, rel)
    if fmt == "txt":
        names = [a["label"] for a in annotations if a["label"]]
        if names:
            writer.text(_stem(rel) + ".txt", "\n".join(names) + "\n")
    elif fmt == ExportFormat.VOC and shaped:
        segmented = dataset.label_type == LabelType.IMAGE_SEGMENTATION
        mask_source = ""
        if segmented:
            mask = writer.write(f"segmentationClassRaw/{_stem(rel)}.png", mask_png(sample, shaped))
            mask_source = s3_uri(mask.uri)
        writer.text(_stem(rel) + ".xml", voc_xml(
            filename=dest.name, folder=dest.parent.name, width=sample["width"] or 0, height=sample["height"] or 0,
            objects=shaped, segmented=segmented, mask_source=mask_source))
    elif fmt == ExportFormat.MANIFEST:
        # Shapes travel in a VOC file beside the image (as in published versions), so boxes and labeled
        # video frames (sample-type 0 beside their .mp4) re-import losslessly.
        loc = ""
        if shaped:
            loc = _stem(rel) + ".xml"
            writer.text(loc, voc_xml(filename=dest.name, folder=dest.parent.name, width=sample["width"] or 0,
                                     height=sample["height"] or 0, objects=shaped, segmented=False))
        state["manifest"].append(sample_line(sample, annotations, source=rel, hard_attribute=True,
                                             annotation_loc=loc, sample_type=sample.get("sample_type")))
    elif fmt == ExportFormat.CSV:
        state["csv"].append(sample | {"labels": annotations, "file": rel})


def _finish(writer: Writer, fmt: str, dataset: Dataset, labels: list[str], state: dict) -> list[str]:
    files = []
    if fmt == ExportFormat.COCO:
        used = sorted({a["label"] for a in state["coco_annotations"]}, key=labels.index)
        doc = coco_document(state["coco_images"], state["coco_annotations"], used)
        files.append(writer.write("annotations.json", json.dumps(doc, separators=(",", ":")).encode()).uri)
    elif fmt == ExportFormat.YOLO:
        files.append(writer.text("obj.names", "\n".join(labels) + "\n").uri)
        data = [f"classes = {len(labels)}", "names = obj.names", "train = train.txt"]
        if state["yolo"]["valid"]:
            data.append("valid = valid.txt")
        files.append(writer.text("obj.data", "\n".join(data) + "\n").uri)
        files.append(writer.text("train.txt", "\n".join(state["yolo"]["train"]) + "\n").uri)
        if state["yolo"]["valid"]:
            files.append(writer.text("valid.txt", "\n".join(state["yolo"]["valid"]) + "\n").uri)
    if fmt == ExportFormat.MANIFEST or (state["manifest"] and fmt not in (ExportFormat.CSV,)):
        files.append(writer.text(f"{dataset.name}.manifest", "\n".join(state["manifest"]) + "\n").uri)
    if fmt == ExportFormat.CSV:
        rows = [[s["id"], s.get("file", ""), s["text"], "|".join(a["label"] for a in s["labels"] if a["label"]),
                 s["usage"], "true" if s["hard"] else "false"] for s in state["csv"]]
        files.append(writer.text(f"{dataset.name}.csv",
                                 csv_text(["id", "file", "text", "labels", "usage", "hard"], rows)).uri)
    return files


def _new_dataset(ctx: OperationContext, target: StoragePath) -> dict:
    from .services import dataset_create

    source, params = ctx.dataset, ctx.params
    user = ctx.operation.created_by
    if user is None:
        raise OperationFailed("The export's author no longer exists, so the new dataset has no owner.")
    try:
        created = dataset_create(
            user=user, workspace=source.workspace, name=params["name"], data_type=source.data_type,
            label_type=source.label_type, input_location=target, output_location=parse(params["output_path"]),
            labeled=source.label_type in CLASSIFICATION_LABEL_TYPES | {LabelType.OBJECT_DETECTION,
                                                                       LabelType.IMAGE_SEGMENTATION},
            import_format=REIMPORT_FORMAT[source.label_type],
            labels=[{"name": label.name, "color": label.color, "attributes": label.attributes}
                    for label in source.labels.all()],
        )
    except ValidationError as exc:
        raise OperationFailed("The new dataset could not be created: " + "; ".join(exc.messages)) from None
    return {"id": created.pk, "name": created.name}

