import pytest

# The shared round-trip helpers assert too; rewriting them gives those asserts pytest's detail.
pytest.register_assert_rewrite("mlmanager.engine.tests.ingest.uploads")
