"""Every answer under /api/ is in the API's error shape, in development (DEBUG) and in
production: unknown paths, ids that are not numbers, methods an operation does not have, and
bugs (500); and GET /api/v1/ lists the resources."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client, RequestFactory
from rest_framework.test import APIClient

from mlmanager.core.api import server_error

pytestmark = pytest.mark.django_db


def _error(response: Any) -> dict[str, Any]:
    assert response["Content-Type"].startswith("application/json"), response.content[:200]
    body = json.loads(response.content)
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "details"}
    return body["error"]  # type: ignore[no-any-return]


@pytest.fixture(params=[False, True], ids=["production", "debug"])
def debug(request: pytest.FixtureRequest, settings: Any) -> bool:
    settings.DEBUG = request.param
    return bool(request.param)


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/nothing/",
        "/api/v1/datasets/abc/",  # the int converter does not match
        "/api/v1/models/1.5/versions/x/activate/",
        "/api/v2/datasets/",
        "/api/",
        "/api",
    ],
)
@pytest.mark.parametrize("method", ["get", "post", "delete", "put"])
def test_unknown_api_paths_answer_json_404(
    api: APIClient, debug: bool, path: str, method: str
) -> None:
    response = getattr(api, method)(path)
    assert response.status_code == 404
    error = _error(response)
    assert error["code"] == "not_found"
    assert error["message"] == (
        "Not found: no API operation has this path. GET /api/v1/ lists them."
    )


def test_unknown_api_path_without_credentials_is_json_404_too(debug: bool) -> None:
    response = Client().post("/api/v1/nothing/", data="x", content_type="text/plain")
    assert response.status_code == 404  # not CSRF's HTML 403 either
    assert _error(response)["code"] == "not_found"


def test_missing_trailing_slash_is_named(api: APIClient, debug: bool) -> None:
    response = api.get("/api/v1/datasets")
    assert response.status_code == 404
    assert _error(response)["message"] == (
        "Not found: API paths end with a slash (/api/v1/datasets/)."
    )


def test_pages_keep_django_404(debug: bool) -> None:
    response = Client().get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_method_not_allowed_is_json(api: APIClient, debug: bool) -> None:
    response = api.put("/api/v1/me/", {}, format="json")
    assert response.status_code == 405
    assert response["Allow"] == "GET, HEAD, OPTIONS"
    assert _error(response) == {
        "code": "method_not_allowed",
        "message": 'Method "PUT" not allowed.',
        "details": {},
    }


def test_a_bug_in_an_api_view_is_json_500_logged(
    owner: Any, debug: bool, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("mlmanager.accounts.api.selectors.current_team_for", broken)
    client = Client(raise_request_exception=False)
    client.force_login(owner)
    response = client.get("/api/v1/me/")
    assert response.status_code == 500
    assert _error(response) == {
        "code": "server_error",
        "message": "Internal server error.",
        "details": {},
    }
    [record] = [r for r in caplog.records if r.name == "django.request"]
    assert record.levelname == "ERROR"
    assert record.getMessage() == "Internal Server Error: /api/v1/me/"
    assert record.exc_info is not None and str(record.exc_info[1]) == "a bug"


def test_a_bug_reaches_the_test_client_as_django_signals_it(
    owner: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr("mlmanager.accounts.api.selectors.current_team_for", broken)
    client = Client()
    client.force_login(owner)
    with pytest.raises(RuntimeError, match="a bug"):
        client.get("/api/v1/me/")


def test_handler500_answers_json_under_api_only() -> None:
    factory = RequestFactory()
    api_response = server_error(factory.get("/api/v1/me/"))
    assert api_response.status_code == 500
    assert _error(api_response)["code"] == "server_error"
    page_response = server_error(factory.get("/datasets/"))
    assert page_response.status_code == 500
    assert page_response["Content-Type"].startswith("text/html")


def test_form_fields_past_django_limit_are_json_413(
    api: APIClient, settings: Any, debug: bool
) -> None:
    # Django raises RequestDataTooBig (a SuspiciousOperation: its HTML 400 page before).
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    response = api.post("/api/v1/datasets/", {"name": "x" * 100}, format="multipart")
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_index_lists_the_resources(debug: bool) -> None:
    response = APIClient().get("/api/v1/")
    assert response.status_code == 200
    base = "http://testserver"
    assert response.json() == {
        "resources": {
            "signup": f"{base}/api/v1/auth/signup/",
            "token": f"{base}/api/v1/auth/token/",
            "me": f"{base}/api/v1/me/",
            "teams": f"{base}/api/v1/teams/",
            "datasets": f"{base}/api/v1/datasets/",
            "models": f"{base}/api/v1/models/",
            "predictions": f"{base}/api/v1/predictions/",
            "jobs": f"{base}/api/v1/jobs/",
            "audit": f"{base}/api/v1/audit/",
            "sites": f"{base}/api/v1/sites/",
            "sensors": f"{base}/api/v1/sensors/",
            "readings": f"{base}/api/v1/readings/",
            "charts": f"{base}/api/v1/charts/",
            "dashboards": f"{base}/api/v1/dashboards/",
            "alert_rules": f"{base}/api/v1/alert_rules/",
            "alerts": f"{base}/api/v1/alerts/",
            "model_attachments": f"{base}/api/v1/model_attachments/",
            "reports": f"{base}/api/v1/reports/",
            "webhooks": f"{base}/api/v1/webhooks/",
            "notifications": f"{base}/api/v1/notifications/",
            "billing_account": f"{base}/api/v1/billing/account/",
            "billing_ledger": f"{base}/api/v1/billing/ledger/",
            "billing_prices": f"{base}/api/v1/billing/prices/",
            "marketplace": f"{base}/api/v1/marketplace/listings/",
            "consulting": f"{base}/api/v1/consulting/",
        },
        "schema": f"{base}/api/schema/",
        "docs": f"{base}/api/docs/",
    }
