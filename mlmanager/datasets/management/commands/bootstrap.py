"""`manage.py bootstrap`: the admin account (once) and the demo dataset, for `mlmanager run`."""

from __future__ import annotations

import secrets
import tempfile
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.management.base import BaseCommand

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import admin_bootstrap
from mlmanager.datasets.demo.digits import write_digits_zip
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.services import dataset_create

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "customer_churn.csv"
DEMO_NAME = "Demo: customer churn"
DEMO_IMAGES_NAME = "Demo: handwritten digits (images)"


class Command(BaseCommand):
    help = "Create the admin account once and load the demo datasets into the admin's team."

    def handle(self, *args: Any, **options: Any) -> None:
        email = settings.ENV.admin_email
        password = settings.ENV.admin_password
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user, created = admin_bootstrap(email=email, password=password)
        if created:
            self.stdout.write(f"  Admin account created: {email}")
            if generated:
                self.stdout.write(f"  Password (shown once, write it down): {password}")
        else:
            self.stdout.write(
                f"  Log in as {email} (password from the first run or MLMANAGER_ADMIN_PASSWORD)"
            )
        team = user.current_team
        if team is None:
            return
        caller = Caller.acting_for(user)
        if not Dataset.objects.filter(team=team, name=DEMO_NAME).exists():
            self._upload(caller, team.pk, DEMO_NAME, DEMO_FILE.name, DEMO_FILE.read_bytes())
        if not Dataset.objects.filter(team=team, name=DEMO_IMAGES_NAME).exists():
            with tempfile.TemporaryDirectory() as folder:
                archive = write_digits_zip(Path(folder) / "digits.zip")
                self._upload(caller, team.pk, DEMO_IMAGES_NAME, archive.name, archive.read_bytes())

    def _upload(self, caller: Caller, team_id: int, name: str, filename: str, data: bytes) -> None:
        upload = TemporaryUploadedFile(filename, "application/octet-stream", len(data), None)
        upload.write(data)
        upload.seek(0)
        dataset_create(caller=caller, upload=upload, name=name, team_id=team_id)
        self.stdout.write(f"  Demo dataset queued: {name}")
