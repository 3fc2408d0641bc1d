"""Predict has a rate limit of its own, apart from (and higher than) the rest of the API."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from mlmanager.core.throttling import FixedWindowRateThrottle

ROW = {"plan": "pro", "monthly_fee": 49.5, "tenure_months": 3}


@pytest.mark.django_db
def test_predict_counts_apart_from_the_api_rate(
    settings: Any, monkeypatch: pytest.MonkeyPatch, api: APIClient, binary_model: Any
) -> None:
    monkeypatch.setattr(FixedWindowRateThrottle, "timer", staticmethod(lambda: 60e6 + 30))
    settings.MLMANAGER_API_RATE = "1/min"
    settings.MLMANAGER_PREDICT_RATE = "3/min"
    url = f"/api/v1/models/{binary_model.pk}/predict/"
    body = json.dumps({"rows": [ROW]})

    assert [api.get("/api/v1/me/").status_code for _ in range(2)] == [200, 429]
    statuses = [
        api.post(url, data=body, content_type="application/json").status_code for _ in range(4)
    ]
    assert statuses == [200, 200, 200, 429]
    refused = api.post(url, data=body, content_type="application/json")
    assert refused["Retry-After"] == "30"
    assert refused.json()["error"]["code"] == "throttled"
