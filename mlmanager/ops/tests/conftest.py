from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _metrics_open(settings: Any) -> None:
    """/metrics as in development without a token, whatever the environment running the tests
    says; the access tests change these."""
    settings.MLMANAGER_METRICS_TOKEN = ""
    settings.MLMANAGER_METRICS_OPEN = True
