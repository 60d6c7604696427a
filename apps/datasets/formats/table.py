"""Table datasets: schema detection, CSV import with type coercion, previews and safe CSV writing.

Rules (spec §4.3): rows whose column count differs from the schema are skipped and counted;
values that do not parse as their column type become null (an empty cell); the preview
shows at most 100 rows.

Formula injection (spec item 44, OWASP "CSV Injection", ASVS 5.0 V1.2.10): every CSV we hand
to a person (version CSV, export, error report) prefixes a single quote to a cell that starts
with = + - @, Tab, CR, LF or NUL, and the csv module quotes and doubles embedded quotes as RFC
4180 requires. ModelArts prefixes a Tab instead; OWASP lists a leading Tab among the dangerous
characters (Calc and Sheets trim it and then evaluate), so the quote is the one that holds in
every spreadsheet. A plain number such as -3 is left alone: it cannot be a formula, and
quoting it would turn a numeric column into text. The normalised copies under `<output>/data/`
are not for spreadsheets and keep their values verbatim, so Parquet and previews see the data.
"""
from __future__ import annotations

import csv
import datetime as dt
import io
import re
from typing import Iterable, Iterator

from django.core.exceptions import ValidationError

from apps.core.paths import StoragePath, parse
from apps.core.storage import get_storage

from ..choices import ColumnType, ErrorCode
from .items import ImportItem, Problem, decode_text, extension, read_bytes, walk

PREVIEW_ROWS = 100
DETECT_ROWS = 200
INT_RANGES = {
    ColumnType.BYTE: (-128, 127),
    ColumnType.SHORT: (-32768, 32767),
    ColumnType.INT: (-2147483648, 2147483647),
    ColumnType.LONG: (-9223372036854775808, 9223372036854775807),
}
NUMBER_RE = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n", "\0")


def csv_files(root: StoragePath) -> list[tuple[StoragePath, str]]:
    return [(path, rel) for path, info, rel in walk(root) if extension(rel) == ".csv"]


def read_rows(path: StoragePath, limit: int | None = None) -> list[list[str]]:
    from django.conf import settings

    text, _ = decode_text(read_bytes(path, limit=settings.ATELIER_DATASET_MAX_SAMPLE_BYTES))
    rows = []
    for row in csv.reader(io.StringIO(text, newline="")):
        rows.append(row)
        if limit is not None and len(rows) >= limit:
            break
    return rows


def _detect_type(values: list[str]) -> str:
    values = [v.strip() for v in values if v.strip()]
    if not values:
        return ColumnType.STRING
    for kind in (ColumnType.BOOLEAN, ColumnType.INT, ColumnType.LONG, ColumnType.DOUBLE, ColumnType.DATE,
                 ColumnType.TIMESTAMP):
        if all(coerce(v, kind) is not None for v in values):
            return kind
    return ColumnType.STRING


def table_schema_detect(root: StoragePath, *, has_header: bool) -> list[dict]:
    """Schema from the CSVs under `root`; raises ValidationError when files disagree on the column count."""
    files = csv_files(root)
    if not files:
        raise ValidationError(f"No .csv file was found under {root.uri}; add the files or give the schema.")
    width = None
    first_rows: list[list[str]] = []
    header: list[str] = []
    for path, rel in files:
        try:
            rows = read_rows(path, DETECT_ROWS)
        except Problem as problem:
            raise ValidationError(f"{rel}: {problem.message}") from None
        if not rows:
            continue
        if width is None:
            width, header = len(rows[0]), rows[0]
            first_rows = rows[1:] if has_header else rows
        elif len(rows[0]) != width:
            raise ValidationError(f"{rel} has {len(rows[0])} columns but {files[0][1]} has {width}; all CSV files of "
                                  "a table dataset need the same columns.")
    if width is None:
        raise ValidationError("The CSV files are empty; add data or give the schema.")
    names = [h.strip() or f"attr_{i}" for i, h in enumerate(header, start=1)] if has_header else \
        [f"attr_{i}" for i in range(1, width + 1)]
    columns = list(zip(*[r for r in first_rows if len(r) == width])) or [[] for _ in range(width)]
    return [{"name": name, "type": _detect_type(list(values))} for name, values in zip(names, columns)]


def coerce(value: str, kind: str):
    """The value as its column type, or None when it does not parse (→ null)."""
    raw = value.strip()
    if raw == "":
        return None
    try:
        if kind == ColumnType.STRING:
            return value
        if kind in INT_RANGES:
            number = int(raw)
            low, high = INT_RANGES[kind]
            return number if low <= number <= high else None
        if kind in (ColumnType.DOUBLE, ColumnType.FLOAT):
            return float(raw) if NUMBER_RE.match(raw) else None
        if kind == ColumnType.BOOLEAN:
            return {"true": True, "false": False}.get(raw.lower())
        if kind == ColumnType.DATE:
            return dt.datetime.strptime(raw, "%Y-%m-%d").date()
        if kind == ColumnType.TIMESTAMP:
            return dt.datetime.strptime(raw, "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return None


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


def escape_cell(value) -> str:
    """Neutralise spreadsheet formulas: text starting with = + - @ Tab CR LF NUL gets a `'` prefix.

    Plain numbers are left alone. Idempotent: an escaped cell starts with `'`, which is safe.
    """
    text = _cell(value)
    if text.startswith(FORMULA_START) and not NUMBER_RE.match(text):
        return "'" + text
    return text


def csv_text(header: list[str] | None, rows: Iterable[Iterable], *, escape: bool = True) -> str:
    """RFC 4180 CSV text; `escape=False` only for internal copies no spreadsheet opens."""
    clean = escape_cell if escape else _cell
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow([clean(h) for h in header])
    for row in rows:
        writer.writerow([clean(v) for v in row])
    return out.getvalue()


def import_tables(ctx, root: StoragePath) -> dict:
    """Read every CSV under `root` against the dataset schema into `<output>/data/`, one sample per file."""
    from ..imports import Ingestor

    dataset = ctx.dataset
    schema = dataset.table_schema
    width = len(schema)
    storage = get_storage()
    data_root = parse(dataset.output_location).child("data")
    ingestor = Ingestor(ctx, labeled=False)
    files = csv_files(root) if storage.is_folder(root) else [(root, root.name)]
    ctx.set_total(len(files))
    totals = {"rows": 0, "skipped_rows": 0, "null_values": 0}
    for path, rel in files:
        try:
            rows = read_rows(path)
        except Problem as problem:
            ctx.error(path.uri, problem.code, problem.message)
            continue
        if dataset.table_has_header and rows:
            rows = rows[1:]
        kept, skipped, nulls = [], 0, 0
        for number, row in enumerate(rows, start=2 if dataset.table_has_header else 1):
            if len(row) != width:
                skipped += 1
                ctx.error(path.uri, ErrorCode.SCHEMA_MISMATCH,
                          f"Row has {len(row)} columns; the schema has {width}. The row was skipped.", line=number)
                continue
            values = [coerce(v, col["type"]) for v, col in zip(row, schema)]
            nulls += sum(1 for v, raw in zip(values, row) if v is None and raw.strip())
            kept.append(values)
        target = StoragePath(data_root.bucket, f"{data_root.key}/{rel}")
        # Verbatim: the data copy feeds Parquet, previews and publishing, which escapes on the way out.
        storage.save(target, io.BytesIO(csv_text([c["name"] for c in schema], kept, escape=False).encode("utf-8")))
        totals["rows"] += len(kept)
        totals["skipped_rows"] += skipped
        totals["null_values"] += nulls
        ingestor.add(ImportItem(origin=path.uri, src=path, rel=rel,
                                properties={"rows": len(kept), "skipped_rows": skipped, "null_values": nulls,
                                            "data": target.uri}))
    counts = ingestor.finish()
    return {**counts, **totals, "errors": ctx.error_count}


def table_preview(sample_properties: dict, schema: list[dict]) -> tuple[list[str], list[list[str]]]:
    """Header and at most 100 rows of a table sample's normalised data."""
    data = sample_properties.get("data")
    if not data:
        return [c["name"] for c in schema], []
    rows = read_rows(parse(data), PREVIEW_ROWS + 1)
    return (rows[0] if rows else [c["name"] for c in schema]), rows[1:PREVIEW_ROWS + 1]


def iter_csv(path: StoragePath) -> Iterator[list[str]]:
    yield from read_rows(path)
