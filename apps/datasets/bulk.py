"""Bulk inserts for the import hot path, without the ORM's per-instance and per-field work.

Building a model instance and letting `bulk_create` prepare every field costs ~100 µs per
sample; a 10,000-line manifest spent most of its time there. Rows here are plain attribute
bags with the model's attribute names; `insert` turns them into one `executemany` per batch,
converting only the values that need it (JSON, date-times) with the field's own
`get_db_prep_save`, so the stored values are exactly what the ORM would store.
"""
from __future__ import annotations

import contextlib
import uuid

from django.db import connection, models

from .models import Annotation, Sample, SampleLabel

_MUTABLE = (dict, list)


class Row:
    """Attribute bag with the model's defaults; `pk` aliases `id`."""

    model: type[models.Model]
    _defaults: dict

    def __init__(self, **values):
        for name, value in self._defaults.items():
            setattr(self, name, value() if callable(value) else value)
        for name, value in values.items():
            setattr(self, name, value)

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


class SampleLabelRow(Row):
    model = SampleLabel


SampleRow.prepare()
AnnotationRow.prepare()
SampleLabelRow.prepare()
SampleRow._defaults["id"] = lambda: uuid.uuid4().hex


def insert(row_class: type[Row], rows: list[Row], *, now) -> None:
    """INSERT the rows in one executemany; auto_now fields get `now`, auto ids come from the database."""
    if not rows:
        return
    fields = [f for f in row_class.model._meta.concrete_fields
              if not (f.primary_key and isinstance(f, models.AutoField))]
    converters = []
    for field in fields:
        if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            stamp = field.get_db_prep_save(now, connection)
            converters.append((field.attname, None, stamp))
        elif isinstance(field, (models.JSONField, models.DateTimeField, models.DateField)):
            converters.append((field.attname, field, None))
        else:
            converters.append((field.attname, None, None))
    table = connection.ops.quote_name(row_class.model._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    values = []
    for row in rows:
        values.append([stamp if stamp is not None else (field.get_db_prep_save(getattr(row, name), connection)
                                                       if field is not None else getattr(row, name))
                       for name, field, stamp in converters])
    with connection.cursor() as cursor:
        cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({placeholders})", values)


@contextlib.contextmanager
def index_paused():
    """Within the current transaction, switch off the SampleLabel/revision triggers (migration 0004).

    The caller must write the index rows and bump the revision itself before leaving. The pause
    row is deleted before the transaction commits, so no other transaction ever sees it.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("index_paused() needs an open transaction.")
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO datasets_indexpause (id) VALUES (1)")
        try:
            yield
        finally:
            cursor.execute("DELETE FROM datasets_indexpause")
