"""The loaded-version cache (verified once, LRU by size) and the buffered prediction log."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from django.utils import timezone

from mlmanager.predictions import log, serving
from mlmanager.predictions.log import AnsweredRows, PredictionLog
from mlmanager.predictions.models import Prediction
from mlmanager.predictions.serving import VersionCache
from mlmanager.predictions.tests.conftest import install_version


@pytest.mark.django_db
def test_versions_load_once_and_the_least_recently_used_is_evicted(
    binary_model: Any, trained_binary: Any, monkeypatch: pytest.MonkeyPatch
):
    loads: list[int] = []
    real_load = serving._load

    def counting_load(version: Any) -> Any:
        loads.append(version.number)
        return real_load(version)

    monkeypatch.setattr(serving, "_load", counting_load)
    first = binary_model.active_version
    second = install_version(binary_model, trained_binary, number=2, activate=False)
    third = install_version(binary_model, trained_binary, number=3, activate=False)
    size = serving._load(first).size_bytes
    loads.clear()
    cache = VersionCache(limit_bytes=int(size * 2.5))  # room for two
    assert cache.get(first) is cache.get(first)
    cache.get(second)
    cache.get(first)  # first is now the most recently used
    cache.get(third)  # evicts second
    assert first.pk in cache and third.pk in cache and second.pk not in cache
    assert loads == [1, 2, 3]


@pytest.mark.django_db
def test_a_tampered_artifact_is_refused_not_loaded(api: Any, binary_model: Any):
    from mlmanager.machines import files

    record = binary_model.active_version.outputs[0]
    path = files.local_path(record["artifact"])
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")
    response = api.post(f"/api/v1/models/{binary_model.pk}/predict/", {"rows": [{}]}, format="json")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "artifact_invalid"


def test_the_log_is_written_in_the_background_within_its_interval(
    transactional_db: None, owner: Any, binary_model: Any, settings: Any
):
    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 0.05
    log = PredictionLog()
    version = binary_model.active_version
    prediction_id = uuid.uuid4()
    log.record(
        AnsweredRows(
            ids=[prediction_id],
            row=lambda index: {"plan": "pro"},
            answers=[{}],
            team_id=binary_model.team_id,
            machine_id=binary_model.pk,
            version_id=version.pk,
            version_number=1,
            source="api",
            user_id=owner.pk,
            token_id=None,
            latency_ms=1.0,
            created_at=timezone.now(),
        )
    )
    assert not Prediction.objects.exists()  # not on the request path
    deadline = time.monotonic() + 5
    while not Prediction.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Prediction.objects.get(pk=prediction_id).inputs == {"plan": "pro"}
    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 0  # the writer thread ends


def _answered(machine: Any, user: Any, prediction_id: Any, inputs: dict | None = None):
    version = machine.active_version
    return AnsweredRows(
        ids=[str(prediction_id)],
        row=lambda index: {"plan": "pro"} if inputs is None else inputs,
        answers=[{"churned": {"value": "yes", "probabilities": {"no": 0.3, "yes": 0.7}}}],
        team_id=machine.team_id,
        machine_id=machine.pk,
        version_id=version.pk,
        version_number=version.number,
        source="api",
        user_id=user.pk,
        token_id=None,
        latency_ms=1.0,
        created_at=timezone.now(),
    )


def _id_made_seconds_ago(seconds: float) -> uuid.UUID:
    """A version-7 id whose time is `seconds` before now (random bits left zero)."""
    milliseconds = int((time.time() - seconds) * 1000)
    return uuid.UUID(int=(milliseconds << 80) | (7 << 76) | (2 << 62))


@pytest.mark.django_db
def test_feedback_on_an_id_not_logged_yet_is_refused_at_once_with_when_to_retry(
    owner: Any, binary_model: Any, settings: Any, make_model: Any, trained_binary: Any
):
    """Feedback right after an answer may reach another web process than the one whose
    buffer holds the entry. No request waits for another process (forged fresh ids would
    hold web threads): the answer says when to retry, and the retry is accepted."""
    from mlmanager.core.tests.factories import api_client_for, member
    from mlmanager.predictions.services import _new_ids

    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 1
    api = api_client_for(owner)
    [prediction_id] = _new_ids(1)  # answered by "another process": in no buffer of this one
    response = api.post(
        f"/api/v1/predictions/{prediction_id}/feedback/", {"actual": "no"}, format="json"
    )
    assert response.status_code == 409, response.content
    error = response.json()["error"]
    assert error["code"] == "prediction_not_logged_yet"
    assert error["details"]["retry_after_s"] in (1, 2)  # the interval + 0.5 s, rounded up
    assert response["Retry-After"] == str(error["details"]["retry_after_s"])
    assert not Prediction.objects.exists()

    log.insert_entries([_answered(binary_model, owner, prediction_id)])  # the other process
    response = api.post(
        f"/api/v1/predictions/{prediction_id}/feedback/", {"actual": "no"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Prediction.objects.get(pk=prediction_id).feedback == {"churned": "no"}

    # Another team's fresh entry gets the answer any fresh id gets (its time alone decides),
    # and once older than the interval, not found: never accepted, nothing told.
    outsider = member("owner")
    theirs = make_model(outsider, trained_binary, name="Theirs")
    fresh, older = _new_ids(1)[0], _id_made_seconds_ago(10)
    log.insert_entries([_answered(theirs, outsider, fresh), _answered(theirs, outsider, older)])
    for their_id, status, code in [
        (fresh, 409, "prediction_not_logged_yet"),
        (older, 404, "not_found"),
    ]:
        response = api.post(
            f"/api/v1/predictions/{their_id}/feedback/", {"actual": "no"}, format="json"
        )
        assert (response.status_code, response.json()["error"]["code"]) == (status, code)
        assert Prediction.objects.get(pk=their_id).feedback is None
    # A version-4 id, or a version-7 id older than the interval: not found at once.
    assert log.seconds_until_written(uuid.UUID(_new_ids(1)[0])) > 0
    assert log.seconds_until_written(uuid.uuid4()) == 0
    an_hour_ago = _id_made_seconds_ago(3600)
    assert an_hour_ago.version == 7 and log.seconds_until_written(an_hour_ago) == 0


@pytest.mark.django_db
def test_a_failed_log_write_falls_back_to_one_entry_at_a_time(
    owner: Any, binary_model: Any, caplog: Any
):
    """One entry the database refuses (here a repeated id) never loses the others."""
    taken = uuid.uuid4()
    log.insert_entries([_answered(binary_model, owner, taken)])
    innocent_before, innocent_after = uuid.uuid4(), uuid.uuid4()
    batches = [
        _answered(binary_model, owner, innocent_before),
        _answered(binary_model, owner, taken, inputs={"plan": "again"}),
        _answered(binary_model, owner, innocent_after),
    ]
    assert log.insert_entries(batches) == 2
    assert set(Prediction.objects.values_list("pk", flat=True)) == {
        taken,
        innocent_before,
        innocent_after,
    }
    assert Prediction.objects.get(pk=taken).inputs == {"plan": "pro"}  # the first one kept
    assert f"prediction log entry {taken} not written" in caplog.text


@pytest.mark.django_db
def test_a_nul_character_that_reaches_the_log_loses_no_other_entry(
    owner: Any, binary_model: Any, caplog: Any
):
    """PostgreSQL cannot store U+0000 in jsonb (the whole write used to fail); requests refuse
    it (invalid_text), and an entry holding one anyway costs only itself."""
    from django.db import connection

    innocent, poisoned = uuid.uuid4(), uuid.uuid4()
    written = log.insert_entries(
        [
            _answered(binary_model, owner, poisoned, inputs={"plan": "prem\x00ium"}),
            _answered(binary_model, owner, innocent),
        ]
    )
    assert Prediction.objects.get(pk=innocent).inputs == {"plan": "pro"}
    if connection.vendor == "postgresql":
        assert written == 1 and not Prediction.objects.filter(pk=poisoned).exists()
        assert "not written" in caplog.text
    else:  # SQLite stores the character
        assert written == 2 and Prediction.objects.filter(pk=poisoned).exists()


@pytest.mark.django_db
def test_feedback_right_after_a_prediction_finds_it_in_the_buffer(
    api: Any, binary_model: Any, settings: Any
):
    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 3600  # the writer thread will not get to it
    [answer] = api.post(
        f"/api/v1/models/{binary_model.pk}/predict/", {"rows": [{}]}, format="json"
    ).json()["predictions"]
    assert not Prediction.objects.exists()
    response = api.post(
        f"/api/v1/predictions/{answer['id']}/feedback/", {"actual": "no"}, format="json"
    )
    assert response.status_code == 200, response.content
    assert Prediction.objects.get().feedback == {"churned": "no"}


@pytest.mark.django_db
def test_a_log_write_that_fails_never_fails_the_answer(
    api: Any, binary_model: Any, monkeypatch: pytest.MonkeyPatch, caplog: Any
):
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("database is gone")

    monkeypatch.setattr(log, "insert_entries", broken)
    response = api.post(f"/api/v1/models/{binary_model.pk}/predict/", {"rows": [{}]}, format="json")
    assert response.status_code == 200
    assert "could not write 1 prediction log entries" in caplog.text
