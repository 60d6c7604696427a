"""Bring back the single-column index on datasets_annotation.dataset_id (dropped by 0006).

annotation_ds_annotator starts with dataset_id too, but on SQLite an index on one column
also holds the rowid in order, so "a dataset's annotations in id order" (the default
ordering: labeling review lists, exports) reads in order instead of sorting every
annotation of the dataset first. Inserts append to it, so imports pay next to nothing.
Created with Django's own statements, without rebuilding the table (which on SQLite would
drop the triggers of migrations 0003/0004).
"""
import copy
import importlib

from django.db import migrations, models

_previous = importlib.import_module("apps.datasets.migrations.0006_drop_redundant_fk_indexes")


def forward(apps, schema_editor):
    model = apps.get_model("datasets", "annotation")
    field = model._meta.get_field("dataset")
    if _previous._single_column_indexes(schema_editor, model._meta.db_table, field.column):
        return
    indexed = copy.copy(field)
    indexed.db_index = True
    for statement in schema_editor._field_indexes_sql(model, indexed):
        schema_editor.execute(statement)


def backward(apps, schema_editor):
    model = apps.get_model("datasets", "annotation")
    for name in _previous._single_column_indexes(schema_editor, model._meta.db_table, "dataset_id"):
        schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


class Migration(migrations.Migration):
    dependencies = [("datasets", "0006_drop_redundant_fk_indexes")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward)],
            state_operations=[
                migrations.AlterField(
                    model_name="annotation", name="dataset",
                    field=models.ForeignKey(on_delete=models.deletion.CASCADE, related_name="+",
                                            to="datasets.dataset")),
            ],
        ),
    ]
