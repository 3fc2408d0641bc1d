"""The prices a new installation starts with (staff change them by adding newer rows)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

# Per minute of training by level (1 is the quickest search), per GPU minute, per 1 000
# predicted rows, per GB-month stored, and the platform's share of a marketplace sale.
DEFAULT_PRICES = {
    "training_minute": "0.05",
    "training_minute_level_1": "0.02",
    "training_minute_level_2": "0.04",
    "training_minute_level_3": "0.06",
    "training_minute_level_4": "0.10",
    "training_minute_level_5": "0.20",
    "gpu_minute": "0.50",
    "predictions_1000_rows": "0.10",
    "storage_gb_month": "0.10",
    "marketplace_commission": "0.20",
}
SINCE = datetime(2020, 1, 1, tzinfo=UTC)


def add_prices(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    for key, amount in DEFAULT_PRICES.items():
        Price.objects.get_or_create(key=key, valid_from=SINCE, defaults={"amount": Decimal(amount)})


class Migration(migrations.Migration):
    dependencies = [("billing", "0001_initial")]

    operations = [migrations.RunPython(add_prices, migrations.RunPython.noop)]
