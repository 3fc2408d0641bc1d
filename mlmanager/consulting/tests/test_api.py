"""The consulting API: submit (JSON or multipart with an attachment), the lists each side
sees, the steps, cross-team ids, refused attachments, and the attachment's download."""

from __future__ import annotations

import io
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from rest_framework.test import APIClient

from mlmanager.billing.models import Account, Reservation
from mlmanager.consulting import attachments
from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.tests.conftest import World
from mlmanager.core.tests.factories import api_client_for
from mlmanager.machines.models import Machine

State = ConsultingRequest.State
URL = "/api/v1/consulting/"
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n"


def _client(user: Any) -> APIClient:
    return api_client_for(user)


def _upload(name: str, content: bytes) -> io.BytesIO:
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def _stored_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT) / "consulting"
    return [path for path in root.rglob("*") if path.is_file()] if root.exists() else []


def _machine(team: Any, name: str = "Churn") -> Machine:
    return Machine.objects.create(
        team=team, name=name, outputs=[], time_budget_s=60, storage_dir=f"m/{name}"
    )


def test_a_team_submits_with_an_attachment_and_a_model(world: World) -> None:
    model = _machine(world.team)
    response = _client(world.editor).post(
        URL,
        {
            "category": "data_engineering",
            "description": "Our nightly import is slow.",
            "model": model.pk,
            "attachment": _upload("../../etc/Report 2026 (final).pdf", PDF),
        },
        format="multipart",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["state"] == "open"
    assert body["category"] == "data_engineering"
    assert body["model"] == model.pk
    assert body["team"] == world.team.pk
    assert body["attachment"] == "Report 2026 (final).pdf"
    assert body["attachment_size"] == len(PDF)
    assert body["amount"] is None and body["consultant"] is None
    request = ConsultingRequest.objects.get(pk=body["id"])
    assert request.attachment_name.startswith(f"consulting/team-{world.team.pk}/")
    assert request.attachment_name.endswith("/attachment.pdf")
    [stored] = _stored_files()
    assert stored.read_bytes() == PDF


def test_a_request_without_attachment_in_json(world: World) -> None:
    response = _client(world.editor).post(
        URL, {"category": "other", "description": "Hello"}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["attachment"] is None


@pytest.mark.parametrize(
    ("name", "content", "status", "code"),
    [
        ("notes.exe", b"MZ\x90\x00", 415, "unsupported_format"),
        ("notes", b"hello", 415, "unsupported_format"),
        ("photo.png", PDF, 415, "content_mismatch"),
        ("data.csv", b"a,b\n\x00\x01\x02", 415, "content_mismatch"),
        ("data.csv", b"", 400, "empty_file"),
        ("###.txt", b"hello", 400, "invalid_filename"),
        ("....", PDF, 400, "invalid_filename"),
        ("big.txt", b"x" * 101, 413, "file_too_large"),
    ],
)
def test_a_bad_attachment_is_refused_and_nothing_is_kept(
    world: World,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    content: bytes,
    status: int,
    code: str,
) -> None:
    monkeypatch.setattr(attachments, "MAX_ATTACHMENT_BYTES", 100)
    response = _client(world.editor).post(
        URL,
        {"category": "other", "description": "See file", "attachment": _upload(name, content)},
        format="multipart",
    )
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert not ConsultingRequest.objects.exists()
    assert _stored_files() == []


def test_a_failure_after_storing_removes_the_file(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_save(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(ConsultingRequest, "save", broken_save)
    with pytest.raises(RuntimeError):
        _client(world.editor).post(
            URL,
            {"category": "other", "description": "x", "attachment": _upload("a.pdf", PDF)},
            format="multipart",
        )
    assert _stored_files() == []


def test_a_model_of_another_team_is_refused_with_404(world: World) -> None:
    theirs = _machine(world.other_team, "Theirs")
    response = _client(world.editor).post(
        URL, {"category": "other", "description": "x", "model": theirs.pk}, format="json"
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "model_not_found"
    assert not ConsultingRequest.objects.exists()


def test_bad_input_is_400(world: World) -> None:
    client = _client(world.editor)
    for body in (
        {"category": "astrology", "description": "x"},
        {"category": "other"},
        {"category": "other", "description": 5},
        {"category": "other", "description": "x", "model": "abc"},
        {"category": "other", "description": "x", "attachment": "not a file"},
    ):
        assert client.post(URL, body, format="json").status_code == 400, body


def test_each_side_sees_its_list(world: World, walk: Callable[..., ConsultingRequest]) -> None:
    open_request = walk(State.OPEN)
    taken = walk(State.APPROVED)
    theirs_open = ConsultingRequest.objects.create(
        team=world.other_team, category="other", description="elsewhere"
    )
    taken_by_other = walk(State.OPEN)
    _client(world.other_consultant).post(f"{URL}{taken_by_other.pk}/approve/")

    def ids(user: Any) -> set[int]:
        response = _client(user).get(URL)
        assert response.status_code == 200
        return {item["id"] for item in response.json()["results"]}

    assert ids(world.viewer) == {open_request.pk, taken.pk, taken_by_other.pk}
    assert ids(world.outsider) == {theirs_open.pk}
    assert ids(world.consultant) == {open_request.pk, taken.pk, theirs_open.pk}
    assert ids(world.staff) == set()


def test_another_teams_request_is_404_everywhere(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.CONTRACT)
    client = _client(world.outsider)
    assert client.get(f"{URL}{request.pk}/").status_code == 404
    for action in ("approve", "contract", "accept", "finish", "cancel"):
        response = client.post(f"{URL}{request.pk}/{action}/", {}, format="json")
        assert response.status_code == 404, action
    assert client.get(f"{URL}{request.pk}/attachment/").status_code == 404
    request.refresh_from_db()
    assert request.state == State.CONTRACT


def test_a_team_token_is_never_a_consultant(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN)
    from mlmanager.core.tests.factories import MembershipFactory

    MembershipFactory(team=world.other_team, user=world.consultant)
    client = api_client_for(world.consultant, world.other_team)
    assert client.get(f"{URL}{request.pk}/").status_code == 404
    assert client.post(f"{URL}{request.pk}/approve/").status_code == 404


@pytest.mark.usefixtures("billing_on")
def test_the_whole_path_through_the_api(world: World, fund: Callable[..., Account]) -> None:
    fund(world.team, "50")
    team = _client(world.editor)
    consultant = _client(world.consultant)
    request_id = team.post(URL, {"category": "other", "description": "x"}, format="json").json()[
        "id"
    ]
    detail = f"{URL}{request_id}/"

    # Staff who is not a consultant does not even see it; a team member is told why.
    assert _client(world.staff).post(f"{detail}approve/").status_code == 404
    response = team.post(f"{detail}approve/")
    assert (response.status_code, response.json()["error"]["code"]) == (403, "not_consultant")
    assert team.post(f"{detail}accept/").json()["error"]["code"] == "wrong_state"

    response = consultant.post(f"{detail}approve/")
    assert response.status_code == 200
    assert (response.json()["state"], response.json()["consultant"]) == (
        "approved",
        world.consultant.pk,
    )
    response = consultant.post(
        f"{detail}contract/",
        {"amount": "80.50", "budget_estimate": "100", "delay_days": 14},
        format="json",
    )
    assert response.status_code == 200
    assert response.json()["amount"] == "80.50"
    assert response.json()["budget_estimate"] == "100.00"
    assert response.json()["delay_days"] == 14

    response = team.post(f"{detail}accept/")
    assert response.status_code == 402
    assert response.json()["error"]["code"] == "insufficient_credits"
    assert team.get(detail).json()["state"] == "contract"

    fund(world.team, "50")
    response = team.post(f"{detail}accept/")
    assert (response.status_code, response.json()["state"]) == (200, "accepted")
    assert Reservation.objects.get(key=f"consulting:{request_id}").status == "held"

    response = consultant.post(f"{detail}finish/")
    assert (response.status_code, response.json()["state"]) == (200, "finished")
    assert Account.objects.get(team_id=world.team.pk).balance == Decimal("19.5")

    response = consultant.post(f"{detail}cancel/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "wrong_state"
    assert response.json()["error"]["details"]["state"] == "finished"


def test_contract_input_is_validated(world: World, walk: Callable[..., ConsultingRequest]) -> None:
    request = walk(State.APPROVED)
    client = _client(world.consultant)
    for body in (
        {"amount": "-1", "budget_estimate": "1", "delay_days": 1},
        {"amount": "1.0000001", "budget_estimate": "1", "delay_days": 1},
        {"amount": "abc", "budget_estimate": "1", "delay_days": 1},
        {"amount": True, "budget_estimate": "1", "delay_days": 1},
        {"amount": "1", "budget_estimate": "1", "delay_days": -1},
        {"amount": "1", "budget_estimate": "1"},
    ):
        response = client.post(f"{URL}{request.pk}/contract/", body, format="json")
        assert response.status_code == 400, body
    request.refresh_from_db()
    assert request.state == State.APPROVED


def test_the_attachment_downloads_for_the_team_and_its_consultant_only(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN, attachment=_simple_upload("brief.pdf", PDF))
    url = f"{URL}{request.pk}/attachment/"

    response = _client(world.viewer).get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert 'attachment; filename="brief.pdf"' in response["Content-Disposition"]
    assert b"".join(response.streaming_content) == PDF
    # A consultant browsing the queue sees the request, not its file, until they take it.
    assert _client(world.consultant).get(f"{URL}{request.pk}/").status_code == 200
    assert _client(world.consultant).get(url).status_code == 404
    _client(world.consultant).post(f"{URL}{request.pk}/approve/")
    assert _client(world.consultant).get(url).status_code == 200
    assert _client(world.other_consultant).get(url).status_code == 404
    assert _client(world.outsider).get(url).status_code == 404
    assert _client(world.staff).get(url).status_code == 404


def _simple_upload(name: str, content: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, content)


def test_the_list_costs_the_same_queries_for_more_requests(
    world: World,
    walk: Callable[..., ConsultingRequest],
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    client = _client(world.consultant)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(URL).status_code == 200
        return len(queries)

    walk(State.OPEN)
    count()  # the token's first use is recorded once
    few = count()
    for state in (State.OPEN, State.APPROVED, State.CONTRACT, State.FINISHED):
        walk(state)
    assert count() == few
