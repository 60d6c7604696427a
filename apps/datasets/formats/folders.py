"""Directory layouts: raw files, one folder per label (imageNet / audio), and same-name .txt labels."""
from __future__ import annotations

from typing import Iterator

from ..choices import IMAGE_EXTENSIONS, DataType, ErrorCode
from .items import AnnSpec, ImportItem, Problem, check_line, decode_text, extension, read_bytes, read_label_file, walk

# Files that accompany images in labeled layouts; an unlabeled import of such a folder skips them quietly.
SIDECAR_EXTENSIONS = {".txt", ".xml", ".json", ".names", ".data", ".manifest"}


def read_text_file(ctx, path, rel: str) -> Iterator[ImportItem]:
    """One sample per non-empty line of a UTF-8 or GBK text file."""
    from django.conf import settings

    try:
        text, _ = decode_text(read_bytes(path, limit=settings.ATELIER_DATASET_MAX_SAMPLE_BYTES))
    except Problem as problem:
        ctx.error(path.uri, problem.code, problem.message)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            check_line(line, number)
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message, line=number)
            continue
        yield ImportItem(origin=path.uri, line=number, src=path, rel=rel, text=line, dedupe=f"{rel}#{number}")


def read_raw(ctx, root, ingestor) -> Iterator[ImportItem]:
    """Every file below `root` (text datasets: every line of every .txt/.csv)."""
    data_type = ingestor.dataset.data_type
    for path, info, rel in walk(root):
        ext = extension(rel)
        if data_type == DataType.TEXT and ext in (".txt", ".csv"):
            yield from read_text_file(ctx, path, rel)
            continue
        if data_type in (DataType.IMAGE, DataType.AUDIO, DataType.VIDEO) and ext in SIDECAR_EXTENSIONS:
            continue
        yield ImportItem(origin=path.uri, src=path, size=info.size, rel=rel)


def read_label_folders(ctx, root, ingestor) -> Iterator[ImportItem]:
    """`Cat/1.jpg` → labeled Cat; with nested folders the innermost folder names the label."""
    label_type = ingestor.dataset.label_type
    for path, info, rel in walk(root):
        parts = rel.split("/")
        annotations = [AnnSpec(label=parts[-2], type=label_type)] if len(parts) >= 2 else []
        yield ImportItem(origin=path.uri, src=path, size=info.size, rel=rel, annotations=annotations)


def read_cls_txt(ctx, root, ingestor) -> Iterator[ImportItem]:
    """`2.jpg` + `2.txt` (one label per line) → one sample with those labels; no .txt → unlabeled."""
    label_type = ingestor.dataset.label_type
    files = list(walk(root))
    txt = {rel[: -len(".txt")]: path for path, info, rel in files if extension(rel) == ".txt"}
    for path, info, rel in files:
        ext = extension(rel)
        if ext == ".txt":
            continue
        annotations = []
        stem = rel[: -len(ext)] if ext else rel
        if ext in IMAGE_EXTENSIONS and stem in txt:
            try:
                content = read_label_file(txt[stem])
            except Problem as problem:
                ctx.error(txt[stem].uri, problem.code, problem.message)
                continue
            names = []
            for line in content.splitlines():
                if line.strip() and line.strip() not in names:
                    names.append(line.strip())
            annotations = [AnnSpec(label=name, type=label_type) for name in names]
        yield ImportItem(origin=path.uri, src=path, size=info.size, rel=rel, annotations=annotations)


__all__ = ["read_raw", "read_label_folders", "read_cls_txt", "read_text_file", "ErrorCode"]
