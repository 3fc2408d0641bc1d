from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("datasets", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="kind",
            field=models.CharField(
                choices=[("table", "Table"), ("images", "Images")], default="table", max_length=12
            ),
        ),
    ]
