"""The table of the "throttles" cache alias (mlmanager/core/throttling.py).

Created whatever CACHES says at migrate time, so the embedded default finds it on `mlmanager run`
and after REDIS_URL is removed; an existing table (createcachetable ran first) is kept.
"""

from typing import Any

from django.core.management import call_command
from django.db import migrations

TABLE = "mlmanager_throttle_cache"


def create_table(apps: Any, schema_editor: Any) -> None:
    call_command("createcachetable", TABLE, database=schema_editor.connection.alias, verbosity=0)


def drop_table(apps: Any, schema_editor: Any) -> None:
    schema_editor.execute(f"DROP TABLE IF EXISTS {schema_editor.quote_name(TABLE)}")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0001_initial")]

    operations = [migrations.RunPython(create_table, drop_table)]
