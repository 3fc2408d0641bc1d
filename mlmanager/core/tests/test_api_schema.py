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
