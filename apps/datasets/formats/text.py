"""Text classification directories (spec §6.4): combined `text<TAB>label` lines, or `X.txt` + `X_result.txt`.

Files may be UTF-8 or GBK. Each non-empty line is one sample.
"""
from __future__ import annotations

from typing import Iterator

from django.conf import settings

from ..choices import ErrorCode
from .items import AnnSpec, ImportItem, Problem, check_line, decode_text, extension, read_bytes, walk


def _lines(ctx, path) -> list[str] | None:
    try:
        text, _ = decode_text(read_bytes(path, limit=settings.ATELIER_DATASET_MAX_SAMPLE_BYTES))
    except Problem as problem:
        ctx.error(path.uri, problem.code, problem.message)
        return None
    return text.splitlines()


def _labels(raw: str, separator: str) -> list[str]:
    names = []
    for part in (raw.split(separator) if separator else [raw]):
        if part.strip() and part.strip() not in names:
            names.append(part.strip())
    return names


def read_combined(ctx, root, ingestor) -> Iterator[ImportItem]:
    separator = ctx.params.get("separator") or "\t"
    label_separator = ctx.params.get("label_separator") or ","
    label_type = ingestor.dataset.label_type
    for path, info, rel in walk(root):
        if extension(rel) not in (".txt", ".csv"):
            continue
        lines = _lines(ctx, path)
        for number, line in enumerate(lines or [], start=1):
            if not line.strip():
                continue
            try:
                check_line(line, number)
            except Problem as problem:
                ctx.error(path.uri, problem.code, problem.message, line=number)
                continue
            text, sep, raw_labels = line.rpartition(separator) if separator in line else (line, "", "")
            annotations = [AnnSpec(label=name, type=label_type) for name in _labels(raw_labels, label_separator)]
            yield ImportItem(origin=path.uri, line=number, src=path, rel=rel, text=text,
                             dedupe=f"{rel}#{number}", annotations=annotations)


def read_separate(ctx, root, ingestor) -> Iterator[ImportItem]:
    label_separator = ctx.params.get("label_separator") or ","
    label_type = ingestor.dataset.label_type
    files = list(walk(root))
    results = {rel[: -len("_result.txt")]: path for path, info, rel in files if rel.endswith("_result.txt")}
    for path, info, rel in files:
        if extension(rel) not in (".txt", ".csv") or rel.endswith("_result.txt"):
            continue
        lines = _lines(ctx, path)
        if lines is None:
            continue
        label_lines: list[str] = []
        result = results.get(rel.rsplit(".", 1)[0])
        if result is not None:
            label_lines = _lines(ctx, result) or []
            # Trailing blank lines do not count: editors often add one.
            while label_lines and not label_lines[-1].strip():
                label_lines.pop()
            text_count = len(lines)
            while text_count and not lines[text_count - 1].strip():
                text_count -= 1
            if len(label_lines) != text_count:
                ctx.error(result.uri, ErrorCode.LINE_COUNT_MISMATCH,
                          f"{result.name} has {len(label_lines)} lines but {path.name} has {text_count}; "
                          "line i of the result file labels line i of the text file.")
                continue
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                check_line(line, number)
            except Problem as problem:
                ctx.error(path.uri, problem.code, problem.message, line=number)
                continue
            raw = label_lines[number - 1] if number <= len(label_lines) else ""
            annotations = [AnnSpec(label=name, type=label_type) for name in _labels(raw, label_separator)]
            yield ImportItem(origin=path.uri, line=number, src=path, rel=rel, text=line, dedupe=f"{rel}#{number}",
                             annotations=annotations)
