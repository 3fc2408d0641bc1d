from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db


def test_openapi_schema_lists_v1_endpoints() -> None:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/v1/auth/signup/",
        "/api/v1/auth/token/",
        "/api/v1/me/",
        "/api/v1/teams/",
        "/api/v1/teams/{team_id}/members/",
        "/api/v1/datasets/",
        "/api/v1/datasets/{dataset_id}/",
        "/api/v1/datasets/{dataset_id}/preview/",
        "/api/v1/jobs/{job_id}/",
        "/api/v1/jobs/{job_id}/cancel/",
    ):
        assert path in schema["paths"], path
    assert schema["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_docs_page_uses_no_cdn() -> None:
    html = Client().get("/api/docs/").content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html
    assert "/static/drf_spectacular_sidecar/" in html


def _schema() -> dict:
    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    return response.json()  # type: ignore[no-any-return]


def _operations(schema: dict) -> list[tuple[str, str, dict]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        for method, operation in operations.items()
    ]


def test_every_operation_documents_its_errors() -> None:
    schema = _schema()
    assert schema["components"]["schemas"]["Error"]["properties"]["error"] == {
        "$ref": "#/components/schemas/ErrorBody"
    }
    assert sorted(schema["components"]["schemas"]["ErrorBody"]["required"]) == [
        "code",
        "details",
        "message",
    ]
    operations = _operations(schema)
    assert len(operations) == 175
    for method, path, operation in operations:
        for status in ("400", "401", "403", "404", "429"):
            content = operation["responses"][status]["content"]
            assert content == {
                "application/json": {"schema": {"$ref": "#/components/schemas/Error"}}
            }, (method, path, status)
        assert "Retry-After" in operation["responses"]["429"]["headers"]
        if method in ("POST", "PATCH", "DELETE"):
            assert "409" in operation["responses"], (method, path)
        if "requestBody" in operation:
            assert {"413", "415"} <= set(operation["responses"]), (method, path)


def test_every_list_is_documented_as_a_page() -> None:
    schema = _schema()
    lists = []
    for method, path, operation in _operations(schema):
        success = operation["responses"].get("200", {}).get("content", {})
        reference = success.get("application/json", {}).get("schema", {}).get("$ref", "")
        if not reference.split("/")[-1].startswith("Paginated"):
            assert success.get("application/json", {}).get("schema", {}).get("type") != "array"
            continue
        lists.append(f"{method} {path}")
        page = schema["components"]["schemas"][reference.split("/")[-1]]
        assert set(page["properties"]) == {"count", "next", "previous", "results"}
        assert page["properties"]["results"]["type"] == "array"
        names = {parameter["name"] for parameter in operation["parameters"]}
        assert {"limit", "offset"} <= names
    assert sorted(lists) == [
        "GET /api/v1/alert_rules/",
        "GET /api/v1/alerts/",
        "GET /api/v1/alerts/{alert_id}/comments/",
        "GET /api/v1/alerts/{alert_id}/events/",
        "GET /api/v1/audit/",
        "GET /api/v1/billing/ledger/",
        "GET /api/v1/billing/prices/",
        "GET /api/v1/charts/",
        "GET /api/v1/consulting/",
        "GET /api/v1/dashboards/",
        "GET /api/v1/datasets/",
        "GET /api/v1/datasets/{dataset_id}/graphs/",
        "GET /api/v1/datasets/{dataset_id}/versions/",
        "GET /api/v1/graph_types/",
        "GET /api/v1/jobs/",
        "GET /api/v1/marketplace/listings/",
        "GET /api/v1/model_attachments/",
        "GET /api/v1/models/",
        "GET /api/v1/models/{machine_id}/batch_predictions/",
        "GET /api/v1/models/{machine_id}/retraining/decisions/",
        "GET /api/v1/models/{machine_id}/runs/",
        "GET /api/v1/models/{machine_id}/versions/",
        "GET /api/v1/notifications/",
        "GET /api/v1/predictions/",
        "GET /api/v1/reports/",
        "GET /api/v1/runs/{run_id}/artifacts/",
        "GET /api/v1/sensors/",
        "GET /api/v1/sensors/{sensor_id}/calibrations/",
        "GET /api/v1/sites/",
        "GET /api/v1/sites/{site_id}/device_keys/",
        "GET /api/v1/sites/{site_id}/members/",
        "GET /api/v1/sites/{site_id}/production/",
        "GET /api/v1/teams/",
        "GET /api/v1/teams/{team_id}/members/",
        "GET /api/v1/webhooks/",
    ]


def test_filters_are_documented_from_the_filtersets() -> None:
    parameters = {
        parameter["name"]: parameter["schema"]
        for parameter in _schema()["paths"]["/api/v1/jobs/"]["get"]["parameters"]
    }
    assert parameters["team"] == {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
    assert parameters["status"]["enum"] == [
        "cancelled",
        "failed",
        "queued",
        "running",
        "succeeded",
    ]
    assert parameters["limit"] == {"type": "integer", "minimum": 1, "maximum": 500}
    predictions = {
        parameter["name"]: parameter["schema"]
        for parameter in _schema()["paths"]["/api/v1/predictions/"]["get"]["parameters"]
    }
    assert predictions["has_feedback"] == {"type": "boolean"}


def test_nullable_fields_are_declared_nullable() -> None:
    schemas = _schema()["components"]["schemas"]
    for name in ("started_at", "finished_at"):
        assert schemas["RunOutput"]["properties"][name]["nullable"] is True
    assert schemas["BatchOutput"]["properties"]["finished_at"]["nullable"] is True


def test_model_outputs_are_names_or_objects_never_null() -> None:
    outputs = _schema()["components"]["schemas"]["MachineListCreateInputRequest"]["properties"][
        "outputs"
    ]
    assert [item["type"] for item in outputs["items"]["oneOf"]] == ["string", "object"]
    assert "nullable" not in outputs["items"]


@pytest.mark.parametrize("name", [0, 1.5, True, None, ["a"], {"a": 1}])
def test_text_fields_refuse_other_json_types(api, name) -> None:
    response = api.post("/api/v1/teams/", {"name": name}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["name"]


@pytest.mark.parametrize("output", [None, 1, ["churned"]])
def test_model_outputs_refuse_null_and_other_types(api, output) -> None:
    response = api.post("/api/v1/models/", {"dataset": 1, "outputs": [output]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["details"]["outputs"]
