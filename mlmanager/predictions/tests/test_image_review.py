"""POST /api/v1/predictions/{id}/review/: confirm, correct, reject; who may; what it writes
(feedback that live accuracy counts, an audit event) (issue 16)."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rest_framework.test import APIClient

from mlmanager.audit.models import AuditEvent
from mlmanager.core.tests.factories import api_client_for, member
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.selectors import live_accuracy
from mlmanager.predictions.tests.images_helpers import digit, shape


def predicted(client: APIClient, machine: Any, content: bytes) -> dict[str, Any]:
    upload = io.BytesIO(content)
    upload.name = "image.png"
    response = client.post(
        f"/api/v1/models/{machine.pk}/predict/", {"image": [upload]}, format="multipart"
    )
    assert response.status_code == 200, response.content
    return response.json()["predictions"][0]


def review(client: APIClient, prediction_id: str, body: dict[str, Any]) -> Any:
    return client.post(f"/api/v1/predictions/{prediction_id}/review/", body, format="json")


def other_label(label: str) -> str:
    return "3" if label != "3" else "4"


@pytest.mark.django_db
def test_confirm_correct_and_reject(api: APIClient, owner: Any, digits_model: Any):
    answer = predicted(api, digits_model, digit(0)[0])
    response = review(api, answer["id"], {"status": "confirmed", "note": "Looks right."})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["review_status"] == "confirmed" and body["review_label"] == answer["label"]
    assert body["review_note"] == "Looks right." and body["reviewed_by"] == owner.email
    assert body["feedback"] == {"label": answer["label"]}

    true_label = other_label(answer["label"])
    body = review(api, answer["id"], {"status": "corrected", "label": true_label}).json()
    assert body["review_status"] == "corrected" and body["review_label"] == true_label
    assert body["feedback"] == {"label": true_label} and body["review_note"] == ""

    body = review(api, answer["id"], {"status": "rejected", "note": "Blurred scan"}).json()
    assert body["review_status"] == "rejected" and body["review_label"] == ""
    assert body["feedback"] is None and body["feedback_at"] is None

    events = AuditEvent.objects.filter(action="prediction.reviewed").order_by("pk")
    assert [event.details["prediction"] for event in events] == [answer["id"]] * 3
    assert [event.changes["review_status"]["after"] for event in events] == [
        "confirmed",
        "corrected",
        "rejected",
    ]
    assert events[0].target_type == "machine" and events[0].target_id == digits_model.pk


@pytest.mark.django_db
def test_a_correction_counts_in_live_accuracy(api: APIClient, digits_model: Any):
    first = predicted(api, digits_model, digit(0)[0])
    second = predicted(api, digits_model, digit(1)[0])
    review(api, first["id"], {"status": "confirmed"})
    review(api, second["id"], {"status": "corrected", "label": other_label(second["label"])})
    [item] = live_accuracy(machine=digits_model)
    assert item["name"] == "label" and item["count"] == 2 and item["accuracy"] == 0.5


@pytest.mark.django_db
def test_bad_reviews_are_refused(api: APIClient, digits_model: Any, shapes_model: Any):
    answer = predicted(api, digits_model, digit(0)[0])

    def refused(body: dict[str, Any], field: str) -> None:
        response = review(api, answer["id"], body)
        assert response.status_code == 400, response.content
        error = response.json()["error"]
        assert error["code"] in ("invalid_review", "invalid"), error

    refused({"status": "corrected"}, "label")
    refused({"status": "corrected", "label": "cat"}, "label")
    refused({"status": "rejected", "label": "3"}, "label")
    refused({"status": "confirmed", "label": other_label(answer["label"])}, "label")
    refused({"status": "maybe"}, "status")
    refused({"status": "confirmed", "note": "x" * 2001}, "note")
    assert Prediction.objects.get(pk=answer["id"]).review_status == ""

    segmented = predicted(api, shapes_model, shape(2))
    response = review(api, segmented["id"], {"status": "corrected", "label": "circle"})
    assert response.status_code == 400
    body = review(api, segmented["id"], {"status": "confirmed"}).json()
    assert body["review_status"] == "confirmed" and body["feedback"] is None


@pytest.mark.django_db
def test_table_rows_are_not_reviewed(api: APIClient, binary_model: Any):
    response = api.post(f"/api/v1/models/{binary_model.pk}/predict/", {"rows": [{}]}, format="json")
    prediction_id = response.json()["predictions"][0]["id"]
    response = review(api, prediction_id, {"status": "confirmed"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "not_reviewable"


@pytest.mark.django_db
def test_viewers_may_not_review_and_other_teams_see_nothing(
    api: APIClient, owner: Any, digits_model: Any
):
    answer = predicted(api, digits_model, digit(0)[0])
    viewer = api_client_for(member("viewer", team=owner.current_team))
    response = review(viewer, answer["id"], {"status": "confirmed"})
    assert response.status_code == 403
    assert viewer.get(f"/api/v1/predictions/{answer['id']}/report.pdf").status_code == 200
    editor = api_client_for(member("editor", team=owner.current_team))
    assert review(editor, answer["id"], {"status": "confirmed"}).status_code == 200

    stranger = api_client_for(member("owner"))
    assert review(stranger, answer["id"], {"status": "confirmed"}).status_code == 404
