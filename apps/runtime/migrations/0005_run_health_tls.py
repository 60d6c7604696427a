from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('runtime', '0004_pool_dedicated'),
    ]

    operations = [
        migrations.AddField(
            model_name='run',
            name='health_tls',
            field=models.BooleanField(default=False),
        ),
    ]
