"""Where model artifacts live, and the key that signs them.

Artifacts sit under MEDIA_ROOT/models/team-<id>/<uuid>/ (a folder the server chose when the
model was created). A run trains into `run-<id>.partial/` and the folder is renamed to
`run-<id>/` only once every artifact is written, then recorded: a version never points at a
half-written model.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.utils.crypto import salted_hmac

from mlmanager.datasets.files import local_path, remove_dir

__all__ = ["artifact_key", "local_path", "publish", "remove_dir", "run_dir", "run_partial_dir"]

ARTIFACT_KEY_SALT = "mlmanager.model-artifacts"


def artifact_key() -> bytes:
    """The HMAC key that signs model artifacts, derived from SECRET_KEY.

    Derived (salted HMAC-SHA256) rather than the secret itself, so an artifact signature can
    never be reused as, or reveal anything about, a session or password-reset signature.
    Rotating SECRET_KEY therefore invalidates every artifact: they must be retrained.
    """
    return salted_hmac(
        ARTIFACT_KEY_SALT, "artifact-signing", secret=settings.SECRET_KEY, algorithm="sha256"
    ).digest()


def run_dir(storage_dir: str, run_id: int) -> str:
    """Relative folder of a finished run's artifacts."""
    return f"{storage_dir}/run-{run_id}"


def run_partial_dir(storage_dir: str, run_id: int) -> str:
    """Relative folder a run trains into; renamed to run_dir() when complete."""
    return f"{run_dir(storage_dir, run_id)}.partial"


def publish(partial: str, final: str) -> None:
    """Make a completely written run folder visible under its final name (one rename)."""
    destination = local_path(final)
    remove_dir(final)  # a retried job may have left one behind
    os.replace(local_path(partial), destination)
