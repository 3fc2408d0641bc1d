"""Fixtures for the client and CLI tests: a live server with a background worker (shared with
the browser tests), and the trained models and fake engine of the apps' own tests."""

from mlmanager.core.tests.live import live_server, worker  # noqa: F401 - fixtures
from mlmanager.machines.tests.conftest import (  # noqa: F401 - fixtures
    _few_candidates,
    fake_engine,
    make_dataset,
)
from mlmanager.predictions.tests.conftest import (  # noqa: F401 - fixtures
    binary_model,
    make_model,
    trained_binary,
)
