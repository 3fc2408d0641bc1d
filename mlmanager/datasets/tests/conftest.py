from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rest_framework.test import APIClient

DEMO_CSV = Path(__file__).resolve().parents[1] / "demo" / "customer_churn.csv"
DEMO_COLUMNS = [
    "customer_id",
    "signup_date",
    "plan",
    "region",
    "monthly_fee",
    "tenure_months",
    "support_calls",
    "satisfaction",
    "churned",
]


@pytest.fixture
def upload(api: APIClient) -> Callable[..., Any]:
    """POSTs a file to the datasets API; returns the response."""

    def post(path: Path, *, client: APIClient | None = None, **fields: Any) -> Any:
        with path.open("rb") as handle:
            return (client or api).post(
                "/api/v1/datasets/", {"file": handle, **fields}, format="multipart"
            )

    return post
