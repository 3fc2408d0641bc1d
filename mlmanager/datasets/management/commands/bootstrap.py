"""`manage.py bootstrap`: the admin account (once) and the demo dataset, for `mlmanager run`."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import TemporaryUploadedFile
from django.core.management.base import BaseCommand

from mlmanager.accounts.caller import Caller
from mlmanager.accounts.services import admin_bootstrap
from mlmanager.datasets.models import Dataset
from mlmanager.datasets.services import dataset_create

DEMO_FILE = Path(__file__).resolve().parents[2] / "demo" / "customer_churn.csv"
DEMO_NAME = "Demo: customer churn"


class Command(BaseCommand):
    help = "Create the admin account once and load the demo dataset into the admin's team."

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
        if team is not None and not Dataset.objects.filter(team=team, name=DEMO_NAME).exists():
            upload = TemporaryUploadedFile(
                DEMO_FILE.name, "text/csv", DEMO_FILE.stat().st_size, None
            )
            upload.write(DEMO_FILE.read_bytes())
            upload.seek(0)
            dataset_create(
                caller=Caller.acting_for(user), upload=upload, name=DEMO_NAME, team_id=team.pk
            )
            self.stdout.write(f"  Demo dataset queued: {DEMO_NAME}")
