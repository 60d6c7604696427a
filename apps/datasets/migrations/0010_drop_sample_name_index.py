"""Drop sample_ds_name (dataset, file_name).

The sample browser's name filter is a substring match (`icontains`), which a B-tree index does
not serve, and no page or API sorts samples by name; every inserted sample still paid for the
index. The table-version publish that reads samples in name order sorts a table dataset's few
samples without it.
"""
from django.db import migrations


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0009_version_annotators_attributes"),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="sample",
            name="sample_ds_name",
        ),
    ]
