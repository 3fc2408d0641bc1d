from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0002_dataset_kind"),
    ]

    operations = [
        # Blank for datasets processed before it existed: the first training computes it
        # (datasets.services.dataset_checksum_ensure).
        migrations.AddField(
            model_name="dataset",
            name="checksum",
            field=models.CharField(blank=True, max_length=64),
        ),
    ]
