from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

from mlmanager.datasets.demo import generate

DEMO_CSV = generate.CSV_PATH
DEMO_COLUMNS = generate.COLUMNS


@pytest.fixture
def upload(api: APIClient) -> Callable[..., Any]:
    """POSTs a file to the datasets API; returns the response."""

    def post(path: Path, *, client: APIClient | None = None, **fields: Any) -> Any:
        with path.open("rb") as handle:
            return (client or api).post(
                "/api/v1/datasets/", {"file": handle, **fields}, format="multipart"
            )

    return post
