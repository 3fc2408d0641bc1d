"""The JSON log line (MLMANAGER_LOG_FORMAT=json), shared by Django's LOGGING and gunicorn's logs
(ops.webserver) so every line the web server writes has the same keys: timestamp (ISO 8601,
UTC), level, logger and message, plus the record's extra fields.

No Django imports: config.settings and the gunicorn master import this.
"""

from __future__ import annotations

from typing import Any

from pythonjsonlogger.json import JsonFormatter

JSON_FORMATTER_OPTIONS: dict[str, Any] = {
    "fmt": "%(levelname)s %(name)s %(message)s",
    "rename_fields": {"levelname": "level", "name": "logger"},
    "timestamp": True,
}


def json_formatter() -> JsonFormatter:
    return JsonFormatter(**JSON_FORMATTER_OPTIONS)
