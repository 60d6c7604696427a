"""Drop the single-column foreign-key indexes that a composite index or constraint already covers.

Every lookup by these columns is served by an index that starts with the same column:

    datasets_sample.dataset_id       sample_unique_dataset_key (dataset_id, dedupe_key) and sample_ds_*
    datasets_annotation.dataset_id   annotation_ds_annotator (dataset_id, annotated_by, sample_id)
    datasets_annotation.label_id     annotation_label_sample (label_id, sample_id)
    datasets_samplelabel.label_id    sample_label_usage/_status/_recent (label_id, ...)
    datasets_samplelabel.sample_id   sample_label_unique (sample_id, label_id)

Each one only cost writes: every imported sample, annotation and index row maintained it.
The database side drops the indexes by what they are (one column, not unique), found by
introspection, rather than rebuilding the tables: on SQLite an AlterField remakes the table,
which would also drop the triggers of migrations 0003/0004.
"""
import copy

from django.db import migrations, models

FIELDS = [("sample", "dataset"), ("annotation", "dataset"), ("annotation", "label"), ("samplelabel", "label"),
          ("samplelabel", "sample")]


def _single_column_indexes(schema_editor, table, column):
    connection = schema_editor.connection
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [name for name, info in constraints.items()
            if info["index"] and not info["unique"] and not info["primary_key"] and info["columns"] == [column]]


def _columns(apps):
    for model_name, field_name in FIELDS:
        model = apps.get_model("datasets", model_name)
        yield model, model._meta.get_field(field_name)


def forward(apps, schema_editor):
    # Both the plain index and, on PostgreSQL, its varchar_pattern_ops "_like" twin cover one column.
    for model, field in _columns(apps):
        for name in _single_column_indexes(schema_editor, model._meta.db_table, field.column):
            schema_editor.execute(f"DROP INDEX {schema_editor.quote_name(name)}")


def backward(apps, schema_editor):
    for model, field in _columns(apps):
        if _single_column_indexes(schema_editor, model._meta.db_table, field.column):
            continue
        indexed = copy.copy(field)
        indexed.db_index = True
        # The statements Django writes for an indexed foreign key (with the "_like" twin on PostgreSQL).
        for statement in schema_editor._field_indexes_sql(model, indexed):
            schema_editor.execute(statement)


class Migration(migrations.Migration):
    dependencies = [("datasets", "0005_version_sample")]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunPython(forward, backward)],
            state_operations=[
                migrations.AlterField(
                    model_name="sample", name="dataset",
                    field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE,
                                            related_name="samples", to="datasets.dataset")),
                migrations.AlterField(
                    model_name="annotation", name="dataset",
                    field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE,
                                            related_name="+", to="datasets.dataset")),
                migrations.AlterField(
                    model_name="annotation", name="label",
                    field=models.ForeignKey(blank=True, db_index=False, null=True,
                                            on_delete=models.deletion.CASCADE, related_name="annotations",
                                            to="datasets.label")),
                migrations.AlterField(
                    model_name="samplelabel", name="label",
                    field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE,
                                            related_name="+", to="datasets.label")),
                migrations.AlterField(
                    model_name="samplelabel", name="sample",
                    field=models.ForeignKey(db_index=False, on_delete=models.deletion.CASCADE,
                                            related_name="label_index", to="datasets.sample")),
            ],
        ),
    ]
