"""The write floor of a manifest import: what this machine's database takes to store the rows at all.

`insert_floor(dataset)` copies the rows a manifest import just wrote for `dataset` (samples,
annotations, label-index rows) into a scratch dataset with fresh ids, in one transaction, with
one `bulk.write_rows` per table (one executemany on SQLite, COPY on PostgreSQL), the label-index triggers paused
as the import pauses them, and no parsing, validation, de-duplication, error report or progress
at all. The time from the first INSERT to the end of the commit gives
`datasets.manifest_insert_floor_samples_per_s`, and `datasets.manifest_import_vs_floor` is the
import's rate divided by it: how much of the machine's write speed the import keeps (1.0 would
mean the import costs nothing beyond its INSERTs). It puts `manifest_import_samples_per_s`
in context on a machine where the floor itself is below the target.
"""
from __future__ import annotations

import secrets
import time


def _rows(cursor, table: str, where: str, params) -> tuple[list[str], list[list]]:
    cursor.execute(f"SELECT * FROM {table} WHERE {where}", params)
    columns = [c[0] for c in cursor.description]
    return columns, [list(row) for row in cursor.fetchall()]


def _rekeyed(columns: list[str], rows: list[list], dataset_id: int, new_ids: dict) -> list[str]:
    """Rows of a table with an auto id and a sample_id, made copies for `dataset_id`: the id column
    dropped (the database numbers them), dataset and sample ids replaced. Returns the columns left."""
    drop, ds, sample = columns.index("id"), columns.index("dataset_id"), columns.index("sample_id")
    for row in rows:
        row[ds], row[sample] = dataset_id, new_ids[row[sample]]
        del row[drop]
    return [c for i, c in enumerate(columns) if i != drop]


def insert_floor(source, scratch) -> float:
    """Seconds to write `source`'s samples, annotations and label-index rows again into `scratch`.

    `scratch` is an empty dataset of the same workspace; labels are reused (the rows are a copy,
    not a second dataset anyone reads). Rows go in the order the import writes them.
    """
    from django.db import connection, transaction

    from apps.datasets.bulk import index_paused, write_cache, write_rows

    with connection.cursor() as cursor:
        s_cols, samples = _rows(cursor, "datasets_sample", "dataset_id = %s", [source.pk])
        a_cols, annotations = _rows(cursor, "datasets_annotation", "dataset_id = %s", [source.pk])
        l_cols, index = _rows(cursor, "datasets_samplelabel", "dataset_id = %s", [source.pk])
    new_ids = {}
    s_id, s_ds, s_key = s_cols.index("id"), s_cols.index("dataset_id"), s_cols.index("dedupe_key")
    for row in samples:
        new_ids[row[s_id]] = row[s_id] = secrets.token_hex(16)
        row[s_ds], row[s_key] = scratch.pk, secrets.token_hex(20)
    samples.sort(key=lambda row: row[s_id], reverse=True)
    a_cols = _rekeyed(a_cols, annotations, scratch.pk, new_ids)
    a_sample = a_cols.index("sample_id")
    annotations.sort(key=lambda row: row[a_sample], reverse=True)
    l_cols = _rekeyed(l_cols, index, scratch.pk, new_ids)
    start = time.perf_counter()
    with transaction.atomic(), index_paused(), write_cache():
        write_rows("datasets_sample", s_cols, samples)
        write_rows("datasets_annotation", a_cols, annotations)
        write_rows("datasets_samplelabel", l_cols, index)
    return time.perf_counter() - start
