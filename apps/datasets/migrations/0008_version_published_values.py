"""Versions record what they hold per sample: usage, label status, hard flag and labels (item 46).

VersionSample gains the sample's published values (and its manifest line's offset) and
VersionSampleLabel holds its published labels, so browsing a version filters and counts by
what was published rather than by the working data as it is now.

Versions published before this migration only recorded membership; their rows are filled here
from the samples' state at migration time (the same values they were shown with until now),
in two set-based statements, and their `stats["values_as_of"]` says when. Their manifest
offsets stay empty: only a publish knows them.
"""
import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models

BACKFILL = [
    # Row values (SQLite 3.15+, PostgreSQL): one correlated lookup per row, not four.
    "UPDATE datasets_versionsample SET (usage, label_status, hard, created_at) = "
    "(SELECT s.usage, s.label_status, s.hard, s.created_at FROM datasets_sample s "
    "WHERE s.id = datasets_versionsample.sample_id)",
    "INSERT INTO datasets_versionsamplelabel (version_id, label_id, sample_id, usage, label_status, hard, created_at) "
    "SELECT vs.version_id, sl.label_id, vs.sample_id, vs.usage, vs.label_status, vs.hard, vs.created_at "
    "FROM datasets_versionsample vs JOIN datasets_samplelabel sl ON sl.sample_id = vs.sample_id",
]


def backfill(apps, schema_editor):
    for statement in BACKFILL:
        schema_editor.execute(statement)
    # The banner of such a version says its values are those of this moment, not of its publish.
    as_of = django.utils.timezone.now().strftime("%Y-%m-%d %H:%M UTC")
    DatasetVersion = apps.get_model("datasets", "DatasetVersion")
    for version in DatasetVersion.objects.filter(entries__isnull=False).distinct().only("id", "stats"):
        version.stats = {**(version.stats or {}), "values_as_of": as_of}
        version.save(update_fields=["stats"])


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0007_annotation_dataset_index"),
    ]

    operations = [
        migrations.CreateModel(
            name="VersionSampleLabel",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("usage", models.CharField(blank=True, max_length=10)),
                ("label_status", models.CharField(max_length=12)),
                ("hard", models.BooleanField(default=False)),
                ("created_at", models.DateTimeField()),
                ("label", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                            related_name="+", to="datasets.label")),
                ("sample", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name="+",
                                             to="datasets.sample")),
                ("version", models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                              related_name="+", to="datasets.datasetversion")),
            ],
        ),
        migrations.AddField(
            model_name="versionsample",
            name="created_at",
            # Overwritten by the backfill below for every existing row.
            field=models.DateTimeField(default=django.utils.timezone.now),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="versionsample",
            name="hard",
            field=models.BooleanField(default=False),
        ),
        migrations.AddField(
            model_name="versionsample",
            name="label_status",
            field=models.CharField(choices=[("unlabeled", "Unlabeled"), ("labeled", "Labeled"),
                                            ("to_confirm", "To be confirmed")], default="unlabeled", max_length=12),
        ),
        migrations.AddField(
            model_name="versionsample",
            name="manifest_offset",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="versionsample",
            name="usage",
            field=models.CharField(blank=True, choices=[("", "None"), ("TRAIN", "Train"), ("EVAL", "Eval"),
                                                        ("TEST", "Test"), ("INFERENCE", "Inference")],
                                   default="", max_length=10),
        ),
        # version_sample_unique (version, sample) covers every lookup by version.
        migrations.AlterField(
            model_name="versionsample",
            name="version",
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE,
                                    related_name="entries", to="datasets.datasetversion"),
        ),
        # Before the indexes, so the backfill does not maintain them row by row.
        migrations.RunPython(backfill, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="versionsample",
            index=models.Index(fields=["version", "-created_at", "-sample"], name="version_sample_created"),
        ),
        migrations.AddIndex(
            model_name="versionsample",
            index=models.Index(fields=["version", "label_status", "-created_at", "-sample"],
                               name="version_sample_status"),
        ),
        migrations.AddIndex(
            model_name="versionsample",
            index=models.Index(fields=["version", "usage", "-created_at", "-sample"], name="version_sample_usage"),
        ),
        migrations.AddIndex(
            model_name="versionsample",
            index=models.Index(fields=["version", "hard", "-created_at", "-sample"], name="version_sample_hard"),
        ),
        migrations.AddIndex(
            model_name="versionsamplelabel",
            index=models.Index(fields=["version", "label", "-created_at", "-sample"], name="version_label_recent"),
        ),
        migrations.AddIndex(
            model_name="versionsamplelabel",
            index=models.Index(fields=["version", "label", "label_status", "-created_at", "-sample"],
                               name="version_label_status"),
        ),
    ]
