"""The import engine: turns reader items into samples, idempotently, with a per-item error report.

Flow of one import run: the reader for the chosen format walks the source and yields
`ImportItem`s (reporting malformed entries itself); the `Ingestor` filters them (import by
label, hard examples only), skips items already in the dataset (same storage file or same
text), enforces the limits, copies files into the dataset's input folder, decodes images
(size, hash, thumbnail) and writes samples, labels and annotations in batches.
"""
from __future__ import annotations

import hashlib
import io
import operator
import wave
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from apps.core.paths import StoragePath, parse
from apps.core.storage import NotFound, StorageError, get_storage

from .choices import (
    EXTENSIONS,
    IMAGE_EXTENSIONS,
    DataType,
    ErrorCode,
    FormatCategory,
    ImportFormat,
    LabelKind,
    LabelStatus,
    OperationKind,
    SampleType,
    Usage,
)
from .formats.items import AnnSpec, ImportItem, Problem, check_size, extension
from .bulk import (
    AnnotationRow,
    SampleRow,
    gc_paused,
    index_paused,
    insert,
    label_index_extend,
    last_annotation_id,
    samples_having,
    write_cache,
)
from .files import FileAccess
from .formats.voc import out_of_bounds
from .models import Dataset, Label, Sample
from .operations import OperationContext, OperationFailed
from .services import dataset_revision_bump

# Rows written per transaction: large enough to amortise SQLite commits, small enough that
# a stop request or a crash loses little work.
BATCH = 500
# Metadata-only imports (manifests: no file is read) write 10,000 rows in ~0.3 s; fewer, larger
# transactions rewrite the sample indexes' pages less often (10,000 rather than 5,000 a batch
# imported a 10,000-line manifest ~8% faster).
METADATA_BATCH = 10_000
THUMBNAIL_SIZE = (256, 256)
HEX = set("0123456789abcdef")

CATEGORY_BY_EXTENSION = {
    # The free-format list calls only the four dataset image formats "image" (spec §3.1: .gif is free format).
    **{ext: FormatCategory.IMAGE for ext in IMAGE_EXTENSIONS},
    ".txt": FormatCategory.TEXT, ".csv": FormatCategory.TEXT, ".wav": FormatCategory.AUDIO,
    ".mp4": FormatCategory.VIDEO,
}
SAMPLE_TYPE_BY_DATA_TYPE = {
    DataType.IMAGE: SampleType.IMAGE, DataType.TEXT: SampleType.TEXT, DataType.AUDIO: SampleType.AUDIO,
    DataType.VIDEO: SampleType.VIDEO, DataType.TABLE: SampleType.TABLE, DataType.FREE_FORMAT: SampleType.OTHER,
}


_ID = operator.attrgetter("id")
_SAMPLE_ID = operator.attrgetter("sample_id")


def dedupe_key(value: str) -> str:
    return hashlib.sha1(value.encode("utf-8")).hexdigest()


def thumbnail_folder(dataset: Dataset) -> StoragePath:
    """Where the dataset's previews go: `<sample id>.jpg` in its output folder's thumbnails/."""
    return parse(dataset.output_location).child("thumbnails")


def file_size(files: FileAccess, path: StoragePath) -> int:
    """Size of an existing file; Problem(MISSING_SOURCE) when there is none."""
    try:
        return files.size(path)
    except NotFound:
        raise Problem(ErrorCode.MISSING_SOURCE, f"{path.uri} does not exist.") from None


def file_bytes(files: FileAccess, path: StoragePath) -> bytes:
    """The whole file; Problem(MISSING_SOURCE) when there is none."""
    try:
        return files.read(path)
    except NotFound:
        raise Problem(ErrorCode.MISSING_SOURCE, f"{path.uri} does not exist.") from None


@dataclass
class Probe:
    size: int
    sha256: str = ""
    width: int | None = None
    height: int | None = None
    duration: float | None = None
    thumbnail: bytes | None = None


def probe_image(data: bytes) -> Probe:
    """Decode an image fully (so truncation shows), within the pixel limit; make a JPEG thumbnail."""
    limit = settings.ATELIER_DATASET_MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
            if width * height > limit:
                raise Problem(ErrorCode.DECOMPRESSION_BOMB,
                              f"The image is {width}×{height} ({width * height} pixels); at most {limit} pixels are "
                              "decoded, to guard against decompression bombs.")
            im.load()
            im.thumbnail(THUMBNAIL_SIZE)
            thumb = im.convert("RGB")
            out = io.BytesIO()
            thumb.save(out, "JPEG", quality=80)
    except Image.DecompressionBombError as exc:
        raise Problem(ErrorCode.DECOMPRESSION_BOMB, f"The image is too large to decode safely: {exc}") from None
    except UnidentifiedImageError:
        raise Problem(ErrorCode.CORRUPT_IMAGE, "The file has an image extension but is not an image.") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise Problem(ErrorCode.CORRUPT_IMAGE, f"The image cannot be decoded ({exc}).") from None
    return Probe(size=len(data), sha256=hashlib.sha256(data).hexdigest(), width=width, height=height,
                 thumbnail=out.getvalue())


def probe_wav(data: bytes) -> float | None:
    try:
        with wave.open(io.BytesIO(data)) as wav:
            return round(wav.getnframes() / float(wav.getframerate()), 3) if wav.getframerate() else None
    except (wave.Error, EOFError) as exc:
        raise Problem(ErrorCode.INVALID_VALUE, f"The file is not a readable WAV file ({exc}).") from None


class Ingestor:
    """Batches items into samples. Use `add()` per item, then `finish()` for the counts."""

    def __init__(self, ctx: OperationContext, *, labeled: bool = True, label_filter: list[str] | None = None,
                 hard_only: bool = False, defer_probe: bool = False):
        self.ctx = ctx
        self.dataset: Dataset = ctx.dataset
        self.storage = get_storage()
        self.files = FileAccess()
        self.thumbnails = thumbnail_folder(self.dataset)
        self.input = parse(self.dataset.input_location)
        self.labeled = labeled
        self.label_filter = {name.strip() for name in label_filter or [] if name.strip()} or None
        self.hard_only = hard_only
        self.defer_probe = defer_probe
        self.batch_size = METADATA_BATCH if defer_probe else BATCH
        self.extensions = EXTENSIONS[self.dataset.data_type]
        if self.dataset.data_type == DataType.VIDEO:
            # Labeled video frames arrive as images (manifest sample-type 0) beside the .mp4 files.
            self.extensions = (*self.extensions, *IMAGE_EXTENSIONS)
        self.labels = {label.name: label for label in Label.objects.filter(dataset=self.dataset)}
        self.sample_count = Sample.objects.filter(dataset=self.dataset).count()
        self.batch: list[ImportItem] = []
        self.copied_texts: set[str] = set()
        # "labeled": created samples that came with annotations (the "imported labeled" of item 18).
        self.counts = {"created": 0, "labeled": 0, "existing": 0, "rejected": 0, "filtered": 0, "annotations": 0}
        self.deferred = 0
        self.taken_ids: set[str] = set()
        self.now = timezone.now()
        # Read once per run: the per-item paths below run tens of thousands of times.
        self.dataset_id = self.dataset.pk
        self.sample_type = SAMPLE_TYPE_BY_DATA_TYPE[self.dataset.data_type]
        self.max_samples = settings.ATELIER_DATASET_MAX_SAMPLES
        self.max_image_bytes = settings.ATELIER_DATASET_MAX_IMAGE_BYTES
        self.max_sample_bytes = settings.ATELIER_DATASET_MAX_SAMPLE_BYTES

    # ---- public ---------------------------------------------------------------------------
    def add(self, item: ImportItem) -> None:
        self.batch.append(item)
        if len(self.batch) >= self.batch_size:
            self.flush()

    def reject(self, item: ImportItem, code: str, message: str) -> None:
        self.counts["rejected"] += 1
        self.ctx.error(item.origin, code, message, line=item.line)

    def finish(self) -> dict:
        self.flush()
        from .services import dataset_counts_refresh

        dataset_counts_refresh(dataset=self.dataset)
        return dict(self.counts)

    # ---- batch processing -----------------------------------------------------------------
    def _filter(self, item: ImportItem) -> bool:
        if not self.labeled:
            item.annotations = []
        if self.hard_only and not item.hard:
            self.counts["filtered"] += 1
            return False
        if self.label_filter is not None:
            item.annotations = [a for a in item.annotations if a.label in self.label_filter]
            if not item.annotations:
                self.counts["filtered"] += 1
                return False
        if item.src is not None and not item.text and self.extensions is not None:
            ext = extension(item.src.key)
            if ext not in self.extensions:
                self.reject(item, ErrorCode.UNSUPPORTED_EXTENSION,
                            f'"{ext or "(none)"}" files are not accepted by {self.dataset.get_data_type_display()} '
                            f"datasets; accepted: {' '.join(self.extensions)}.")
                return False
        return True

    def _destination(self, item: ImportItem) -> StoragePath | None:
        if item.src is None:
            return None
        if item.src.is_within(self.input):
            return item.src
        rel = item.rel or item.src.name
        return StoragePath(self.input.bucket, f"{self.input.key}/{rel}" if self.input.key else rel)

    def flush(self) -> None:
        items, self.batch = self.batch, []
        if not items:
            return
        self.ctx.check_stop()
        keyed: list[tuple[ImportItem, StoragePath | None, str]] = []
        for item in items:
            if not self._filter(item):
                continue
            dest = self._destination(item)
            key = dedupe_key(item.dedupe or (dest.uri if dest is not None and not item.text else "text:" + item.text))
            keyed.append((item, dest, key))
        keys = [k for _, _, k in keyed]
        wanted_ids = {i.sample_id.lower() for i, _, _ in keyed if len(i.sample_id) == 32}
        self.taken_ids = samples_having("id", wanted_ids)
        existing = samples_having("dedupe_key", keys, dataset_id=self.dataset_id)
        samples: list[SampleRow] = []
        annotations: list[AnnotationRow] = []
        seen: set[str] = set()
        thumbs: list[tuple[StoragePath, bytes]] = []
        for item, dest, key in keyed:
            if key in existing or key in seen:
                self.counts["existing"] += 1
                continue
            if self.sample_count >= self.max_samples:
                self.reject(item, ErrorCode.SAMPLE_QUOTA_EXCEEDED,
                            f"The dataset holds the most samples allowed ({self.max_samples}).")
                continue
            try:
                sample, thumb = self._sample_for(item, dest, key)
            except Problem as problem:
                self.reject(item, problem.code, problem.message)
                continue
            except (StorageError, OSError) as exc:
                self.reject(item, ErrorCode.MISSING_SOURCE, f"The file could not be read or copied: {exc}")
                continue
            seen.add(key)
            self.sample_count += 1
            samples.append(sample)
            if thumb is not None:
                path = self.thumbnails.child(f"{sample.pk}.jpg")
                sample.thumbnail = path.uri
                thumbs.append((path, thumb))
            sample_annotations = self._annotations_for(item, sample)
            annotations += sample_annotations
            if sample_annotations:
                human = any(a.source == "human" for a in sample_annotations)
                sample.label_status = LabelStatus.LABELED if human else LabelStatus.TO_CONFIRM
        for path, data in thumbs:
            self.files.write(path, data, atomic=False)
        # Rows go in the order of the indexes they feed: a batch shares one created_at, so sorting by
        # id (descending, as the browser indexes are) turns random-key index inserts into appends.
        # The sort is stable: a sample's annotations keep their order.
        samples.sort(key=_ID, reverse=True)
        annotations.sort(key=_SAMPLE_ID, reverse=True)
        # One batch writes its own SampleLabel rows and one revision bump instead of a trigger per row.
        with transaction.atomic(), index_paused(), write_cache():
            first = last_annotation_id() + 1
            insert(SampleRow, samples, now=self.now)
            insert(AnnotationRow, annotations, now=self.now)
            if annotations:
                label_index_extend(dataset_id=self.dataset_id, first_annotation_id=first,
                                   last_annotation_id=last_annotation_id())
            dataset_revision_bump(self.dataset.pk)
        self.counts["created"] += len(samples)
        self.counts["annotations"] += len(annotations)
        self.counts["labeled"] += len({a.sample_id for a in annotations})
        self.ctx.advance(len(items))

    def _sample_for(self, item: ImportItem, dest: StoragePath | None, key: str) -> tuple[SampleRow, bytes | None]:
        dataset = self.dataset
        sample = SampleRow(dataset_id=self.dataset_id, dedupe_key=key, usage=item.usage, hard=item.hard,
                           hard_coefficient=item.hard_coefficient, properties=item.properties,
                           sample_type=self.sample_type)
        wanted = item.sample_id.lower()
        if len(wanted) == 32 and set(wanted) <= HEX and wanted not in self.taken_ids:
            # Keep the manifest's sample id (round trips keep ids) unless another sample already has it.
            sample.id = wanted
            self.taken_ids.add(wanted)
        thumb = None
        if item.text:
            sample.text = item.text
            sample.format_category = FormatCategory.TEXT
            if item.src is not None and dest is not None:
                if dest != item.src and dest.uri not in self.copied_texts:
                    self._copy(item.src, dest)
                    self.copied_texts.add(dest.uri)
                sample.source = dest.uri
                sample.file_name = dest.name
                sample.directory = dest.parent.key
            return sample, None
        assert dest is not None and item.src is not None
        ext = extension(item.src.key)
        category = CATEGORY_BY_EXTENSION.get(ext, FormatCategory.OTHER)
        is_image = category == FormatCategory.IMAGE
        limit = self.max_image_bytes if is_image else self.max_sample_bytes
        if item.size is not None:
            check_size(item.size, limit)
        sample.source, sample.file_name, sample.directory = dest.uri, dest.name, dest.key.rpartition("/")[0]
        sample.format_category = category
        if dataset.data_type in (DataType.FREE_FORMAT, DataType.VIDEO):
            sample.sample_type = {FormatCategory.IMAGE: SampleType.IMAGE, FormatCategory.TEXT: SampleType.TEXT,
                                  FormatCategory.AUDIO: SampleType.AUDIO, FormatCategory.VIDEO: SampleType.VIDEO
                                  }.get(category, SampleType.OTHER)
        if self.defer_probe:
            size = check_size(item.size if item.size is not None else file_size(self.files, item.src), limit)
            if dest != item.src:
                self._copy(item.src, dest)
            sample.size = size
            sample.width, sample.height = item.width, item.height
            if is_image:
                self.deferred += 1
            return sample, None
        if is_image or ext == ".wav":
            check_size(item.size if item.size is not None else file_size(self.files, item.src), limit)
            data = file_bytes(self.files, item.src)
            if is_image:
                try:
                    probe = probe_image(data)
                except Problem:
                    if dataset.data_type == DataType.IMAGE:
                        raise
                    probe = None  # free format keeps any file; an undecodable picture just has no preview
                if probe is not None:
                    sample.width, sample.height, thumb = probe.width, probe.height, probe.thumbnail
            else:
                sample.duration = probe_wav(data)
            sample.size, sample.sha256 = len(data), hashlib.sha256(data).hexdigest()
            if dest != item.src:
                self._copy(item.src, dest)
        else:
            sample.size = self._copy(item.src, dest) if dest != item.src else (
                item.size if item.size is not None else file_size(self.files, item.src))
        return sample, thumb

    def _copy(self, src: StoragePath, dest: StoragePath) -> int:
        try:
            return self.files.copy(src, dest)
        except NotFound:
            raise Problem(ErrorCode.MISSING_SOURCE, f"{src.uri} does not exist.") from None

    def _label(self, spec: AnnSpec, item: ImportItem) -> Label | None:
        if not spec.label:
            return None
        label = self.labels.get(spec.label)
        if label is not None:
            return label
        from .services import palette_color  # here, past the lookup that answers all but a label's first use

        if len(self.labels) >= settings.ATELIER_DATASET_MAX_LABELS:
            self.ctx.error(item.origin, ErrorCode.LABEL_QUOTA_EXCEEDED,
                           f'The label "{spec.label}" was not added: the dataset holds the most labels allowed '
                           f"({settings.ATELIER_DATASET_MAX_LABELS}).", line=item.line)
            return None
        if len(spec.label) > 1024 or any(ord(ch) < 32 for ch in spec.label):
            self.ctx.error(item.origin, ErrorCode.INVALID_NAME,
                           f'The label "{spec.label[:60]}" breaks the label name rules (1–1024 visible characters).',
                           line=item.line)
            return None
        kind = spec.label_kind if spec.label_kind in LabelKind.values else LabelKind.CLASS
        label = Label.objects.create(dataset=self.dataset, name=spec.label, kind=kind,
                                     color=palette_color(len(self.labels)))
        self.labels[spec.label] = label
        return label

    def _annotations_for(self, item: ImportItem, sample: SampleRow) -> list[AnnotationRow]:
        rows = []
        for spec in item.annotations:
            message = out_of_bounds(spec, sample.width or item.width, sample.height or item.height)
            if message:
                self.ctx.error(item.origin, ErrorCode.BOX_OUT_OF_BOUNDS, message, line=item.line)
                continue
            label = self._label(spec, item)
            if spec.label and label is None:
                continue
            rows.append(AnnotationRow(
                sample_id=sample.id, dataset_id=self.dataset_id, label_id=label.pk if label else None,
                type=spec.type or self.dataset.label_type,
                shape=spec.shape, geometry=spec.geometry, properties=spec.properties, ref_id=spec.ref_id,
                source=spec.source, annotated_by=spec.annotated_by or "human", confidence=spec.confidence,
                hard=spec.hard, hard_coefficient=spec.hard_coefficient, created_at=spec.created_at or self.now,
            ))
        return rows


# Format → (module in .formats, reader function); only the module a run needs is imported.
READERS = {
    ImportFormat.RAW: ("folders", "read_raw"),
    ImportFormat.IMAGENET_FOLDER: ("folders", "read_label_folders"),
    ImportFormat.AUDIO_CLS_FOLDER: ("folders", "read_label_folders"),
    ImportFormat.IMAGE_CLS_TXT: ("folders", "read_cls_txt"),
    ImportFormat.VOC: ("voc_dir", "read_voc_dir"),
    ImportFormat.VOC_SEG: ("voc_dir", "read_voc_dir"),
    ImportFormat.YOLO: ("yolo", "read_yolo"),
    ImportFormat.TEXT_CLS_COMBINED: ("text", "read_combined"),
    ImportFormat.TEXT_CLS_SEPARATE: ("text", "read_separate"),
    ImportFormat.MANIFEST: ("manifest", "read_manifest"),
    ImportFormat.COCO: ("coco", "read_coco"),
    ImportFormat.LABEL_STUDIO: ("labelstudio", "read_label_studio"),
    ImportFormat.CVAT: ("cvat", "read_cvat"),
}


def _reader(fmt: str):
    """The reader function of an import format, or None when `fmt` is not one."""
    import importlib

    entry = READERS.get(fmt)
    if entry is None:
        return None
    module, function = entry
    return getattr(importlib.import_module(f"apps.datasets.formats.{module}"), function)


# ---- runs -------------------------------------------------------------------------------------------------------


def run_import(ctx: OperationContext) -> dict:
    """Import from `params.path` in `params.format`; see the module docstring."""
    params = ctx.params
    fmt = params.get("format", ImportFormat.RAW)
    try:
        root = parse(params["path"])
    except (KeyError, ValidationError) as exc:
        raise OperationFailed(f"The import path is not valid: {exc}") from None
    storage = get_storage()
    for uri in params.get("archives") or []:
        # Uploaded archives are unpacked here, in the worker, entry by entry (see formats/archive.py).
        from .formats.archive import extract_zip

        import tempfile
        from pathlib import Path

        archive = parse(uri)
        # zipfile needs a seekable file; S3 bodies are streams, so every backend goes through a local copy.
        with tempfile.TemporaryDirectory() as tmp:
            local = Path(tmp) / "upload.zip"
            storage.download_to(archive, local)
            with open(local, "rb") as fh:
                extract_zip(fh, root,
                            lambda entry, code, message, a=archive: ctx.error(f"{a.name}!{entry}", code, message))
        storage.delete(archive)
    if not storage.exists(root):
        raise OperationFailed(f"{root.uri} does not exist.")
    if fmt == ImportFormat.TABLE_CSV:
        from .formats.table import import_tables

        return import_tables(ctx, root)
    reader = _reader(fmt)
    if reader is None:
        raise OperationFailed(f'"{fmt}" is not an import format.')
    defer = fmt == ImportFormat.MANIFEST
    ingestor = Ingestor(ctx, labeled=params.get("labeled", fmt != ImportFormat.RAW),
                        label_filter=params.get("labels"), hard_only=bool(params.get("hard_only")), defer_probe=defer)
    with gc_paused():
        for item in reader(ctx, root, ingestor):
            ingestor.add(item)
        counts = ingestor.finish()
    if ingestor.deferred:
        from .services import operation_start

        thumbs = operation_start(user=None, dataset=ctx.dataset, kind=OperationKind.THUMBNAILS, params={})
        counts["thumbnails_operation"] = thumbs.uid
    counts["errors"] = ctx.error_count
    return counts


def run_sync(ctx: OperationContext) -> dict:
    """Re-read the input folder: import files not yet in the dataset, drop samples whose file is gone.

    Files are never deleted; only sample records whose file no longer exists are removed.
    """
    from .formats.folders import read_raw
    from .services import dataset_counts_refresh

    dataset = ctx.dataset
    root = parse(dataset.input_location)
    present = {info.key for info in get_storage().walk(root)}
    removed = 0
    file_samples = Sample.objects.filter(dataset=dataset).exclude(source="").values_list("pk", "source")
    gone = [pk for pk, source in file_samples.iterator() if parse(source).key not in present
            or parse(source).bucket != root.bucket]
    for start in range(0, len(gone), BATCH):
        removed += Sample.objects.filter(pk__in=gone[start:start + BATCH]).delete()[1].get("datasets.Sample", 0)
    ingestor = Ingestor(ctx, labeled=False)
    for item in read_raw(ctx, root, ingestor):
        ingestor.add(item)
    counts = ingestor.finish()
    dataset_counts_refresh(dataset=dataset)
    return {"added": counts["created"], "removed": removed, "rejected": counts["rejected"], "errors": ctx.error_count}


THUMBNAIL_CHUNK = 200


def run_thumbnails(ctx: OperationContext) -> dict:
    """Decode images imported without probing (manifests): size, hash, thumbnail; report undecodable ones.

    Files are read and thumbnails written through `FileAccess`, as imports do (one folder
    resolution per folder, not one per file), and the samples' new values are written a chunk
    at a time in one transaction: file by file through the storage API, with a commit per
    sample, 10,000 small images took ~9 s.
    """
    dataset = ctx.dataset
    files = FileAccess()
    limit = settings.ATELIER_DATASET_MAX_IMAGE_BYTES
    folder = thumbnail_folder(dataset)
    pending = Sample.objects.filter(dataset=dataset, format_category=FormatCategory.IMAGE, thumbnail="")
    ctx.set_total(pending.count())
    done = 0
    updates: list[tuple[str, Probe, str]] = []

    def write() -> None:
        with transaction.atomic():
            for pk, probe, uri in updates:
                Sample.objects.filter(pk=pk).update(width=probe.width, height=probe.height, sha256=probe.sha256,
                                                    thumbnail=uri)
        updates.clear()

    for pk, source in pending.values_list("pk", "source").iterator():
        path = parse(source)
        try:
            check_size(file_size(files, path), limit)
            probe = probe_image(file_bytes(files, path))
        except Problem as problem:
            ctx.error(source, problem.code, problem.message)
        else:
            thumb = folder.child(f"{pk}.jpg")
            files.write(thumb, probe.thumbnail, atomic=False)  # derived, made again when missing
            updates.append((pk, probe, thumb.uri))
            if len(updates) >= THUMBNAIL_CHUNK:
                write()
        done += 1
        ctx.progress(done)
    write()
    return {"processed": done, "errors": ctx.error_count}


USAGES = {u.value for u in Usage}
