"""Versions record their samples' annotators and sample attributes (item 46).

With VersionSampleAnnotator and VersionSampleAttribute, the version view's annotator and
attribute filters (and their lists of choices) read what a version was published with, as its
label, status, usage and hard-example filters already do (migration 0008).

Versions published before this migration have their rows filled here from the samples'
annotations and attributes at migration time, in two set-based statements, and their
`stats["annotators_as_of"]` says when; the version view's banner says so.
"""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BACKFILL = [
    "INSERT INTO datasets_versionsampleannotator (version_id, sample_id, annotated_by) "
    "SELECT DISTINCT vs.version_id, vs.sample_id, a.annotated_by "
    "FROM datasets_versionsample vs JOIN datasets_annotation a ON a.sample_id = vs.sample_id",
    "INSERT INTO datasets_versionsampleattribute (version_id, sample_id, name, value) "
    "SELECT vs.version_id, vs.sample_id, sa.name, sa.value "
    "FROM datasets_versionsample vs JOIN datasets_sampleattribute sa ON sa.sample_id = vs.sample_id",
]


def backfill(apps, schema_editor):
    for statement in BACKFILL:
        schema_editor.execute(statement)
    as_of = django.utils.timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    DatasetVersion = apps.get_model("datasets", "DatasetVersion")
    for version in DatasetVersion.objects.filter(entries__isnull=False).distinct().only("id", "stats"):
        version.stats = {**(version.stats or {}), "annotators_as_of": as_of}
        version.save(update_fields=["stats"])


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0008_version_published_values"),
    ]

    operations = [
        migrations.CreateModel(
            name="VersionSampleAnnotator",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("annotated_by", models.CharField(max_length=150)),
                ("sample", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                             to="datasets.sample")),
                ("version", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                              related_name="+", to="datasets.datasetversion")),
            ],
        ),
        migrations.CreateModel(
            name="VersionSampleAttribute",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=128)),
                ("value", models.CharField(max_length=256)),
                ("sample", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                             to="datasets.sample")),
                ("version", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                              related_name="+", to="datasets.datasetversion")),
            ],
        ),
        # Before the lookup indexes, so the backfill does not maintain them row by row.
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="versionsampleannotator",
            index=models.Index(fields=["version", "annotated_by", "sample"], name="version_annotator"),
        ),
        migrations.AddIndex(
            model_name="versionsampleattribute",
            index=models.Index(fields=["version", "name", "value", "sample"], name="version_attribute"),
        ),
    ]
