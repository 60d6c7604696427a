"""Bulk inserts for the import hot path, without the ORM's per-instance and per-field work.

Building a model instance and letting `bulk_create` prepare every field costs ~100 µs per
sample; a 10,000-line manifest spent most of its time there. Rows here are plain attribute
bags with the model's attribute names; `insert` turns them into one `executemany` per batch,
converting only the values that need it (JSON, date-times) with the field's own
`get_db_prep_save`, so the stored values are exactly what the ORM would store.
"""
from __future__ import annotations

import contextlib
import gc
import json
import operator

from django.db import connection, models, transaction

from .models import Annotation, Sample

_MUTABLE = (dict, list)


class Row:
    """Attribute bag with the model's defaults; `pk` aliases `id`."""

    model: type[models.Model]
    _defaults: dict

    def __init__(self, **values):
        cls = type(self)
        if "_static" not in cls.__dict__:
            cls._split_defaults()
        attrs = self.__dict__
        attrs.update(cls._static)
        for name, factory in cls._dynamic:
            if name not in values:
                attrs[name] = factory()
        attrs.update(values)

    @classmethod
    def _split_defaults(cls) -> None:
        # Plain values are copied in one dict update; only callables (fresh dicts, new ids) run per row.
        cls._static = {name: value for name, value in cls._defaults.items() if not callable(value)}
        cls._dynamic = [(name, value) for name, value in cls._defaults.items() if callable(value)]

    @property
    def pk(self):
        return self.id

    @classmethod
    def prepare(cls) -> None:
        defaults = {}
        for field in cls.model._meta.concrete_fields:
            if field.primary_key and isinstance(field, models.AutoField):
                continue
            if field.has_default():
                default = field.default
                defaults[field.attname] = default if callable(default) else (
                    (lambda d=default: type(d)(d)) if isinstance(default, _MUTABLE) else default)
            else:
                # What the ORM stores for an unset field: "" for non-null text, else NULL.
                defaults[field.attname] = "" if (not field.null and field.empty_strings_allowed) else None
        cls._defaults = defaults


class SampleRow(Row):
    model = Sample


class AnnotationRow(Row):
    model = Annotation


SampleRow.prepare()
AnnotationRow.prepare()


def _converter(field, now):
    """How one column's value reaches the database: (constant) or (function) or (None: as is)."""
    ops = connection.ops
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return field.get_db_prep_save(now, connection), None
    if isinstance(field, models.JSONField):
        encoder = field.encoder

        def json_value(value):
            # Most rows carry an empty dict; its text is the same whatever the encoder.
            if not value and type(value) in _MUTABLE:
                return "{}" if type(value) is dict else "[]"
            return None if value is None else ops.adapt_json_value(value, encoder)
        return None, json_value
    if isinstance(field, models.DateTimeField):
        cache: dict = {}

        def datetime_value(value):
            # Rows of one run share a handful of time stamps; adapt each once.
            try:
                return cache[value]
            except KeyError:
                cache[value] = adapted = field.get_db_prep_save(value, connection)
                return adapted
            except TypeError:
                return field.get_db_prep_save(value, connection)
        return None, datetime_value
    if isinstance(field, models.DateField):
        return None, lambda value: field.get_db_prep_save(value, connection)
    return None, None


def insert(row_class: type[Row], rows: list[Row], *, now) -> None:
    """INSERT the rows with `write_rows`; auto_now fields get `now`, auto ids come from the database.

    Values are stored exactly as the ORM would store them: JSON through the backend's
    `adapt_json_value` with the field's encoder, date-times through the field's own preparation.
    """
    if not rows:
        return
    fields = [f for f in row_class.model._meta.concrete_fields
              if not (f.primary_key and isinstance(f, models.AutoField))]
    names = [f.attname for f in fields]
    getter = operator.itemgetter(*names)
    constants, functions = [], []
    for index, field in enumerate(fields):
        constant, function = _converter(field, now)
        if constant is not None:
            constants.append((index, constant))
        elif function is not None:
            functions.append((index, function))
    values = []
    for row in rows:
        value = list(getter(row.__dict__))
        for index, constant in constants:
            value[index] = constant
        for index, function in functions:
            value[index] = function(value[index])
        values.append(value)
    write_rows(row_class.model._meta.db_table, [f.column for f in fields], values)


def write_rows(table: str, columns: list[str], values: list) -> None:
    """INSERT `values` (sequences in `columns` order, already in database form) into `table`.

    SQLite: one executemany (in-process, no round trip per row to save). PostgreSQL: COPY, which
    streams the rows in one round trip where executemany would send one statement per row.
    Always in a transaction (a savepoint inside the caller's): outside one, SQLite committed an
    executemany row by row.
    """
    if not values:
        return
    quote = connection.ops.quote_name
    names = ", ".join(quote(c) for c in columns)
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {quote(table)} ({names}) FROM STDIN") as copy:
                for value in values:
                    copy.write_row(value)
        else:
            cursor.executemany(f"INSERT INTO {quote(table)} ({names}) VALUES ({', '.join(['%s'] * len(columns))})",
                               values)


def samples_having(column: str, values, *, dataset_id: int | None = None) -> set[str]:
    """The values among `values` that samples already have in `column` ("id" or "dedupe_key"),
    among the samples of `dataset_id` when given.

    The values travel as one parameter (a JSON array read by `json_each` on SQLite, an array
    compared with `ANY` on PostgreSQL): as an `IN` list of a parameter each, Django prepared
    and SQLite bound 5,000 values per import batch, which cost more than the lookup itself.
    """
    if column not in ("id", "dedupe_key"):
        raise ValueError(f"samples_having() does not look up {column!r}.")
    values = list(values)
    if not values:
        return set()
    scope, params = ("dataset_id = %s AND ", [dataset_id]) if dataset_id is not None else ("", [])
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"SELECT {column} FROM datasets_sample WHERE {scope}{column} = ANY(%s)", [*params, values])
        else:
            cursor.execute(f"SELECT {column} FROM datasets_sample WHERE {scope}{column} IN "
                           "(SELECT value FROM json_each(%s))", [*params, json.dumps(values)])
        return {value for (value,) in cursor.fetchall()}


def last_annotation_id() -> int:
    """The highest annotation id so far; rows inserted after this call in the transaction get higher ids."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM datasets_annotation")
        return cursor.fetchone()[0]


def label_index_extend(*, dataset_id: int, first_annotation_id: int, last_annotation_id: int) -> None:
    """Write the SampleLabel rows for the dataset's annotations with ids in [first, last].

    One set-based statement doing what the insert trigger (migration 0003) does per row: one row
    per distinct (sample, label) with the sample's usage, status and creation time, pairs already
    indexed left alone. Read from the rows just written, so the index matches them by
    construction; sorted in the order of the label indexes, so their inserts are appends.
    """
    if connection.vendor == "sqlite":
        head, tail = "INSERT OR IGNORE INTO", ""
    else:
        head, tail = "INSERT INTO", " ON CONFLICT (sample_id, label_id) DO NOTHING"
    # Only the id range may pick the plan (the unary + keeps the other columns' indexes out): an
    # index on dataset_id or label_id would walk every annotation of the dataset for each batch.
    with connection.cursor() as cursor:
        cursor.execute(
            f"{head} datasets_samplelabel (dataset_id, label_id, sample_id, usage, label_status, created_at) "
            "SELECT DISTINCT a.dataset_id, a.label_id, a.sample_id, s.usage, s.label_status, s.created_at "
            "FROM datasets_annotation a JOIN datasets_sample s ON s.id = a.sample_id "
            "WHERE a.id >= %s AND a.id <= %s AND +a.dataset_id = %s AND +a.label_id IS NOT NULL "
            f"ORDER BY a.label_id DESC, a.sample_id DESC{tail}",
            [first_annotation_id, last_annotation_id, dataset_id])


# The tables whose triggers (migrations 0003/0004) a paused bulk writer takes over.
PAUSED_TABLES = ("datasets_sample", "datasets_annotation")


@contextlib.contextmanager
def index_paused():
    """Within the current transaction, switch off the SampleLabel/revision triggers (migration 0004).

    The caller must write the index rows and bump the revision itself before leaving, and only
    INSERT into the paused tables meanwhile.

    PostgreSQL: a row in `datasets_indexpause` makes the trigger functions return at once; it
    is deleted before the transaction commits, so no other transaction ever sees it.

    SQLite: the triggers are dropped and re-created from their own stored SQL inside the
    transaction. A trigger whose WHEN clause is false still costs its INSERT as much as the
    row itself (SQLite gives up its index-insert shortcuts for a statement with a trigger
    program: 10,000 samples and annotations took 0.58 s instead of 0.24 s), so skipping them
    is the largest single saving of a manifest import. Schema changes are transactional in
    SQLite and it has one writer at a time: other connections keep seeing the triggers (in
    their snapshot, or after our commit), and a rollback or crash brings them back with the
    rest. The cost is one schema re-read per other connection per committed batch.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("index_paused() needs an open transaction.")
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            marks = ", ".join(["%s"] * len(PAUSED_TABLES))
            cursor.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name IN ({marks}) "
                           "ORDER BY name", PAUSED_TABLES)
            triggers = cursor.fetchall()
            for name, _ in triggers:
                cursor.execute(f"DROP TRIGGER {connection.ops.quote_name(name)}")
            try:
                yield
            finally:
                for _, sql in triggers:
                    cursor.execute(sql)
            return
        cursor.execute("INSERT INTO datasets_indexpause (id) VALUES (1)")
        try:
            yield
        finally:
            cursor.execute("DELETE FROM datasets_indexpause")


# Page cache for a bulk write on SQLite, in KiB. The default (2 MiB) is smaller than the index pages
# one 5,000-sample batch touches, so SQLite spilled and re-read pages mid-transaction (~8% of the
# insert time). Only memory: durability is unchanged.
WRITE_CACHE_KIB = 64 * 1024


@contextlib.contextmanager
def write_cache():
    """On SQLite, give this connection a larger page cache for the block, then restore its size."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        previous = int(cursor.fetchone()[0])
        cursor.execute(f"PRAGMA cache_size = -{WRITE_CACHE_KIB}")
        try:
            yield
        finally:
            cursor.execute(f"PRAGMA cache_size = {previous}")


@contextlib.contextmanager
def gc_paused():
    """Switch off the cyclic garbage collector for a bulk run, then collect once.

    Imports and exports allocate hundreds of thousands of small dicts and rows that form no
    cycles; each young-generation pass walks all of them again, which cost a COCO export of
    50,000 boxes more time than building the document. Reference counting still frees memory.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
