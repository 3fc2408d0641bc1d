from pathlib import Path

from django.apps import AppConfig
from django.conf import settings


class CoreConfig(AppConfig):
    name = "mlmanager.core"
    label = "core"

    def ready(self) -> None:
        # Django writes uploads into FILE_UPLOAD_TEMP_DIR but does not create it.
        Path(settings.FILE_UPLOAD_TEMP_DIR).mkdir(parents=True, exist_ok=True)
