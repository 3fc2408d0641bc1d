import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0004_dataset_graph"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="children",
                to="datasets.dataset",
            ),
        ),
        migrations.AddField(
            model_name="dataset",
            name="version",
            field=models.PositiveIntegerField(default=1),
        ),
        migrations.AddField(
            model_name="dataset",
            name="rows_added",
            field=models.BigIntegerField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="dataset",
            name="lineage",
            field=models.BigIntegerField(blank=True, db_index=True, null=True),
        ),
        migrations.AddField(
            model_name="dataset",
            name="rows_origin",
            field=models.JSONField(blank=True, default=dict),
        ),
        migrations.AddConstraint(
            model_name="dataset",
            constraint=models.UniqueConstraint(
                condition=models.Q(("lineage__isnull", False)),
                fields=("lineage", "version"),
                name="dataset_lineage_version_unique",
            ),
        ),
    ]
