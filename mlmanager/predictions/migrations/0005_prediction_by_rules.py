# Predictions answered by a model's experimenter rules (issue 18).

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("predictions", "0004_prediction_image_review"),
    ]

    operations = [
        migrations.AddField(
            model_name="prediction",
            name="by_rules",
            field=models.BooleanField(db_default=False, default=False),
        ),
    ]
