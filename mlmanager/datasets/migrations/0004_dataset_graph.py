import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("datasets", "0003_dataset_checksum"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="DatasetGraph",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True, db_index=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                ("title", models.CharField(blank=True, max_length=200)),
                (
                    "type",
                    models.CharField(
                        choices=[
                            ("scatter", "Scatter"),
                            ("line", "Line / time series"),
                            ("histogram", "Histogram"),
                            ("box", "Box"),
                            ("violin", "Violin"),
                            ("bar", "Bar"),
                            ("heatmap", "Heatmap (correlations)"),
                            ("pair", "Pair grid"),
                            ("density", "Density"),
                            ("pie", "Pie"),
                            ("area", "Area"),
                            ("bubble", "Bubble"),
                            ("scatter_3d", "3-D scatter"),
                        ],
                        max_length=12,
                    ),
                ),
                ("x", models.CharField(blank=True, max_length=255)),
                ("y", models.CharField(blank=True, max_length=255)),
                ("z", models.CharField(blank=True, max_length=255)),
                ("hue", models.CharField(blank=True, max_length=255)),
                ("size", models.CharField(blank=True, max_length=255)),
                ("style", models.CharField(blank=True, max_length=255)),
                ("col", models.CharField(blank=True, max_length=255)),
                ("row", models.CharField(blank=True, max_length=255)),
                ("columns", models.JSONField(blank=True, default=list)),
                (
                    "created_by",
                    models.ForeignKey(
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "dataset",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="graphs",
                        to="datasets.dataset",
                    ),
                ),
                (
                    "team",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="accounts.team",
                    ),
                ),
            ],
            options={
                "ordering": ["-created_at", "-pk"],
            },
        ),
    ]
