"""Events written through the real service, at chosen moments."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from unittest import mock

import pytest

from mlmanager.accounts.caller import Caller
from mlmanager.audit.models import AuditEvent
from mlmanager.audit.services import audit_record

START = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def record() -> Callable[..., AuditEvent]:
    """record(user, team, action, at=START + hours, **audit_record kwargs)."""

    def write(user: Any, team: Any, action: str, *, at: dt.datetime = START, **kwargs: Any):
        caller = kwargs.pop("caller", None) or Caller.for_session(user, address="203.0.113.7")
        with mock.patch("django.utils.timezone.now", return_value=at):
            return audit_record(caller=caller, team=team, action=action, **kwargs)

    return write
