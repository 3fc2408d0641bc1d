"""Dataset (and batch) files, through the one storage module (mlmanager.core.storage).

Names are relative to the storage root (the data folder, or the S3 bucket and prefix); the
engine reads local files, which `materialise` provides in either mode.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from mlmanager.core.storage import (
    delete,
    delete_folder,
    exists,
    local_path,
    materialise,
    open_for_reading,
    size,
    updating,
    working_path,
    writing,
)

__all__ = [
    "delete",
    "exists",
    "keep_upload",
    "local_path",
    "materialise",
    "open_for_reading",
    "remove_dir",
    "size",
    "updating",
    "working_path",
    "writing",
]


def keep_upload(temporary: Path, destination: Path) -> None:
    """Keep a streamed upload at the local path `destination` (from `writing`) without copying
    it: a hard link when the upload folder and the destination share a filesystem (they do by
    default, both in the data folder), else a copy. Django still owns and deletes its
    temporary file."""
    try:
        os.link(temporary, destination)
    except OSError:
        shutil.copyfile(temporary, destination)


def remove_dir(name: str) -> None:
    """Remove a dataset's (or batch's) folder with every file in it."""
    delete_folder(name)
