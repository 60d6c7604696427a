"""Sample-browser indexes that serve the filters they were meant for, and no index nothing uses.

- sample_ds_hard and version_sample_hard become partial indexes over hard examples only,
  ordered as the browser pages. Django writes `hard=True` as a bare boolean condition
  (`WHERE "hard"`), which matches a partial index but cannot seek into a (dataset, hard, ...)
  index on SQLite: the "hard: yes" filter walked every sample of the dataset or version.
  "hard: no" matches nearly every sample and walks the *_created index.
- version_label_usage (version, label, usage, ...) is added: a version's label + usage filter
  walked the label's whole range, where the working data has sample_label_usage.
- sample_ds_name (dataset, file_name) is dropped: the name filter is a substring match
  (`icontains`), which a B-tree index does not serve, no page or API sorts samples by name, and
  every inserted sample paid for it.

tests/datasets/test_query_plans.py checks each filter's page query against these indexes.
"""
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0009_version_annotators_attributes"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="sample", name="sample_ds_hard"),
        migrations.RemoveIndex(model_name="sample", name="sample_ds_name"),
        migrations.RemoveIndex(model_name="versionsample", name="version_sample_hard"),
        migrations.AddIndex(
            model_name="sample",
            index=models.Index(condition=models.Q(("hard", True)), fields=["dataset", "-created_at", "-id"],
                               name="sample_ds_hard"),
        ),
        migrations.AddIndex(
            model_name="versionsample",
            index=models.Index(condition=models.Q(("hard", True)), fields=["version", "-created_at", "-sample"],
                               name="version_sample_hard"),
        ),
        migrations.AddIndex(
            model_name="versionsamplelabel",
            index=models.Index(fields=["version", "label", "usage", "-created_at", "-sample"],
                               name="version_label_usage"),
        ),
    ]
