from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from mlmanager.accounts.models import User
from mlmanager.datasets.models import Dataset


def _bootstrap() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_bootstrap_creates_admin_once_and_demo_once(settings, monkeypatch) -> None:
    first = _bootstrap()
    assert "Admin account created: admin@example.com" in first
    password = first.split("write it down): ")[1].split()[0]
    admin = User.objects.get(email="admin@example.com")
    assert admin.is_superuser
    assert admin.check_password(password)
    assert Dataset.objects.get().name == "Demo: customer churn"

    second = _bootstrap()
    assert "created" not in second
    assert "Log in as admin@example.com" in second
    assert User.objects.count() == 1
    assert Dataset.objects.count() == 1
