"""Consulting pages: the team's list and form, a request's page with the buttons each side
gets, the consultants' queue, refusals shown as messages, other teams' requests not found."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from mlmanager.consulting.models import ConsultingRequest
from mlmanager.consulting.tests.conftest import World
from mlmanager.machines.models import Machine

State = ConsultingRequest.State


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _buttons(html: str) -> set[str]:
    names = ("approve", "propose", "accept", "finish", "cancel")
    return {name for name in names if f'data-testid="consulting-{name}"' in html}


def test_the_team_submits_through_the_form(world: World) -> None:
    model = Machine.objects.create(
        team=world.team, name="Churn", outputs=[], time_budget_s=60, storage_dir="m"
    )
    client = _client(world.editor)
    page = client.get("/consulting/new/")
    assert page.status_code == 200
    assert "Churn" in page.content.decode()
    response = client.post(
        "/consulting/new/",
        {
            "category": "model_performance",
            "description": "Accuracy dropped",
            "model": str(model.pk),
            "attachment": SimpleUploadedFile("notes.txt", b"precision fell in May\n"),
        },
    )
    request = ConsultingRequest.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/consulting/{request.pk}/"
    assert (request.model, request.attachment_filename) == (model, "notes.txt")
    detail = client.get(f"/consulting/{request.pk}/").content.decode()
    assert "Your request was sent to the consultants." in detail
    listing = client.get("/consulting/").content.decode()
    assert f"/consulting/{request.pk}/" in listing
    assert f'href="/consulting/{request.pk}/attachment/"' in detail
    assert _buttons(detail) == {"cancel"}


def test_a_bad_attachment_is_explained_on_the_form(world: World) -> None:
    response = _client(world.editor).post(
        "/consulting/new/",
        {
            "category": "other",
            "description": "x",
            "attachment": SimpleUploadedFile("tool.exe", b"MZ"),
        },
    )
    assert response.status_code == 200
    assert "Files of this type cannot be attached." in response.content.decode()
    assert not ConsultingRequest.objects.exists()


def test_each_side_gets_its_buttons(world: World, walk: Callable[..., ConsultingRequest]) -> None:
    cases = [
        (State.OPEN, world.consultant, {"approve"}),
        (State.OPEN, world.viewer, set()),
        (State.APPROVED, world.consultant, {"propose", "cancel"}),
        (State.CONTRACT, world.editor, {"accept", "cancel"}),
        (State.CONTRACT, world.consultant, {"cancel"}),
        (State.ACCEPTED, world.consultant, {"finish", "cancel"}),
        (State.FINISHED, world.editor, set()),
    ]
    for state, user, buttons in cases:
        request = walk(state)
        html = _client(user).get(f"/consulting/{request.pk}/").content.decode()
        assert _buttons(html) == buttons, (state, user)


def test_the_path_through_the_pages_and_a_refusal_as_a_message(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.OPEN)
    consultant, team = _client(world.consultant), _client(world.editor)
    base = f"/consulting/{request.pk}/"
    assert consultant.post(f"{base}approve/")["Location"] == base
    response = consultant.post(
        f"{base}contract/", {"amount": "abc", "budget_estimate": "1", "delay_days": "2"}
    )
    assert response.status_code == 400
    consultant.post(
        f"{base}contract/", {"amount": "25", "budget_estimate": "30", "delay_days": "5"}
    )
    # Accepting twice: the second is refused, and the page says why.
    team.post(f"{base}accept/")
    response = team.post(f"{base}accept/", follow=True)
    assert "it cannot be accepted now" in response.content.decode()
    consultant.post(f"{base}finish/")
    request.refresh_from_db()
    assert (request.state, request.amount, request.delay_days) == (State.FINISHED, 25, 5)
    timeline = _client(world.viewer).get(base).content.decode()
    for step in ("Submitted", "Approved by a consultant", "Contract proposed", "Finished"):
        assert step in timeline


@pytest.mark.usefixtures("billing_on")
def test_not_enough_credit_is_a_clear_message(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.CONTRACT, amount="30")
    response = _client(world.editor).post(f"/consulting/{request.pk}/accept/", follow=True)
    assert response.status_code == 200
    assert "Not enough credit: this needs 30.00" in response.content.decode()
    request.refresh_from_db()
    assert request.state == State.CONTRACT


def test_the_queue_is_for_consultants(world: World, walk: Callable[..., ConsultingRequest]) -> None:
    open_request = walk(State.OPEN)
    finished = walk(State.FINISHED)
    page = _client(world.consultant).get("/consulting/queue/")
    assert page.status_code == 200
    html = page.content.decode()
    assert f"/consulting/{open_request.pk}/" in html
    assert f"/consulting/{finished.pk}/" not in html
    assert "Acme" in html
    assert _client(world.staff).get("/consulting/queue/").status_code == 403
    assert _client(world.editor).get("/consulting/queue/").status_code == 403


def test_other_teams_requests_are_not_found(
    world: World, walk: Callable[..., ConsultingRequest]
) -> None:
    request = walk(State.CONTRACT)
    client = _client(world.outsider)
    assert client.get(f"/consulting/{request.pk}/").status_code == 404
    assert client.post(f"/consulting/{request.pk}/accept/").status_code == 404
    assert client.get(f"/consulting/{request.pk}/attachment/").status_code == 404
    assert f"/consulting/{request.pk}/" not in client.get("/consulting/").content.decode()
