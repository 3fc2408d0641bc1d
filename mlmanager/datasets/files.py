"""Where dataset files live. Local paths, because pandas and pyarrow read files; the storage
root is MEDIA_ROOT, inside the data folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from django.conf import settings


def local_path(relative: str) -> Path:
    root = Path(settings.MEDIA_ROOT).resolve()
    path = (root / relative).resolve()
    if root not in path.parents:
        raise ValueError(f"path escapes the storage root: {relative!r}")
    return path


def keep_upload(temporary: Path, destination: Path) -> None:
    """Keep a streamed upload without copying it: a hard link when the upload folder and the
    storage share a filesystem (they do by default, both in the data folder), else a copy.
    Django still owns and deletes its temporary file."""
    try:
        os.link(temporary, destination)
    except OSError:
        shutil.copyfile(temporary, destination)


def remove_dir(relative: str) -> None:
    shutil.rmtree(local_path(relative), ignore_errors=True)


def remove_file(relative: str) -> None:
    local_path(relative).unlink(missing_ok=True)
