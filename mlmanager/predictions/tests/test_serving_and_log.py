"""The loaded-version cache (verified once, LRU by size) and the buffered prediction log."""

from __future__ import annotations

import threading
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


def test_feedback_waits_for_an_answer_still_in_another_processs_buffer(
    transactional_db: None, owner: Any, binary_model: Any, settings: Any
):
    """Feedback sent right after an answer may reach another web process than the one whose
    buffer holds the entry; the id tells when it was made, so the lookup waits that long."""
    from django.db import connection

    from mlmanager.core.tests.factories import api_client_for
    from mlmanager.predictions.services import _new_ids

    settings.MLMANAGER_PREDICTION_LOG_FLUSH_S = 1
    [prediction_id] = _new_ids(1)
    version = binary_model.active_version
    answered = AnsweredRows(
        ids=[prediction_id],
        row=lambda index: {"plan": "pro"},
        answers=[{"churned": {"value": "yes", "probabilities": {"no": 0.3, "yes": 0.7}}}],
        team_id=binary_model.team_id,
        machine_id=binary_model.pk,
        version_id=version.pk,
        version_number=version.number,
        source="api",
        user_id=owner.pk,
        token_id=None,
        latency_ms=1.0,
        created_at=timezone.now(),
    )

    def other_process_writes_its_buffer() -> None:
        try:
            log.insert_entries([answered])
        finally:
            connection.close()

    other_process = threading.Timer(0.2, other_process_writes_its_buffer)
    other_process.start()
    try:
        response = api_client_for(owner).post(
            f"/api/v1/predictions/{prediction_id}/feedback/", {"actual": "no"}, format="json"
        )
    finally:
        other_process.join()
    assert response.status_code == 200, response.content
    assert Prediction.objects.get(pk=prediction_id).feedback == {"churned": "no"}
    # Only a recent version-7 id is waited for; an unknown one is 404 at once.
    assert log.seconds_until_written(uuid.UUID(_new_ids(1)[0])) > 0
    assert log.seconds_until_written(uuid.uuid4()) == 0
    an_hour_ago = uuid.UUID(int=(int((time.time() - 3600) * 1000) << 80) | (7 << 76) | (2 << 62))
    assert an_hour_ago.version == 7 and log.seconds_until_written(an_hour_ago) == 0


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
