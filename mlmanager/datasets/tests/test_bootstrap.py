from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from mlmanager.accounts.models import User
from mlmanager.datasets.demo.digits import write_digits_zip
from mlmanager.datasets.models import Dataset
from mlmanager.engine.ingest.images import read_image_zip


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
    assert sorted(Dataset.objects.values_list("name", "kind")) == [
        ("Demo: customer churn", "table"),
        ("Demo: handwritten digits (images)", "images"),
    ]

    second = _bootstrap()
    assert "created" not in second
    assert "Log in as admin@example.com" in second
    assert User.objects.count() == 1
    assert Dataset.objects.count() == 2


def test_the_demo_digits_zip_reads_as_ten_classes_of_32_pixel_images(tmp_path) -> None:
    archive = write_digits_zip(tmp_path / "digits.zip")
    report = read_image_zip(archive, tmp_path / "data.parquet")
    assert (report.task, report.layout, report.count) == ("classification", "folders", 1797)
    assert sorted(report.classes) == [str(digit) for digit in range(10)]
    assert min(report.classes.values()) >= 170
    assert report.sizes["width"]["max"] == report.sizes["height"]["min"] == 32
    assert report.skipped == []
