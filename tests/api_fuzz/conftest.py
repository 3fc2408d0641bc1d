"""Fixtures for the API fuzz test: the app on pytest-django's `live_server` (shared with the
browser and client tests), a real user with a real API token, and real objects made through
the API (tests/api_fuzz/seed.py) so operations taking ids reach their logic."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import api_token_create
from mlmanager.core.tests.factories import member
from mlmanager.core.tests.live import live_server
from tests.api_fuzz.seed import SeededIds, seed

__all__ = ["live_server"]  # a fixture

# Far above what the fuzzer sends (a few thousand requests in a few minutes), so no limit
# answers 429 where the run means to reach the operation; the throttles still count every
# request. 429 itself is documented on every operation.
UNREACHED_RATE = "1000000/min"


@pytest.fixture
def _limits_out_of_reach(settings: Any) -> None:
    settings.MLMANAGER_API_RATE = UNREACHED_RATE
    settings.MLMANAGER_PREDICT_RATE = UNREACHED_RATE
    settings.MLMANAGER_TOKEN_RATE = UNREACHED_RATE
    settings.MLMANAGER_ACCOUNT_EMAIL_RATE = UNREACHED_RATE
    settings.MLMANAGER_ACCOUNT_ADDRESS_RATE = UNREACHED_RATE
    # Trainings the seeding runs stop after two candidates (a few seconds).
    settings.MLMANAGER_TRAINING_MAX_CANDIDATES = 2


@pytest.fixture
def api_token(transactional_db: None) -> str:
    owner = member("owner")
    _token, raw = api_token_create(caller=Caller.for_session(owner), name="fuzz")
    return raw


@pytest.fixture
def seeded(live_server: Any, api_token: str, _limits_out_of_reach: None) -> SeededIds:
    def run_jobs() -> None:
        call_command("worker", "--batch", "--interval", "0", verbosity=0)

    return seed(base_url=live_server.url, token=api_token, run_jobs=run_jobs)
