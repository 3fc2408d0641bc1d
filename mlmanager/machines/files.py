"""Where model artifacts live, and the key that signs them.

Artifacts sit in the folder models/team-<id>/<uuid>/run-<id>/ of the storage (a folder the
server chose when the model was created). A run trains into a local folder (`run_workdir`), which
is published under `run-<id>/` only once every artifact is written, then recorded: a version
never points at a half-written model. Loading materialises the artifact and its signature on
this machine, and the caller verifies the signature before anything is unpickled.
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.utils.crypto import salted_hmac

from mlmanager.core import storage
from mlmanager.core.storage import holding, local_path, materialise, size
from mlmanager.datasets.files import remove_dir
from mlmanager.engine.artifacts import SIGNATURE_SUFFIX, ArtifactError

__all__ = [
    "artifact_key",
    "holding",
    "local_path",
    "materialise",
    "materialise_artifact",
    "publish",
    "remove_dir",
    "run_dir",
    "run_partial_dir",
    "run_workdir",
    "size",
]

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
    """Folder (storage name) of a finished run's artifacts."""
    return f"{storage_dir}/run-{run_id}"


def run_partial_dir(storage_dir: str, run_id: int) -> str:
    """Name of the folder a run trains into; published as run_dir() when complete."""
    return f"{run_dir(storage_dir, run_id)}.partial"


def run_workdir(partial: str) -> Path:
    """The local folder the engine writes a run's files into (see `run_partial_dir`)."""
    return storage.local_folder(partial)


def publish(partial: str, final: str) -> None:
    """Make a completely written run folder visible under its final name."""
    storage.publish_folder(run_workdir(partial), final)


def materialise_artifact(name: str) -> Path:
    """A local copy of an artifact with its signature file beside it, for the engine's loader
    (which verifies both before unpickling). A missing one is the loader's "missing or
    modified" error, as it is when the loader finds no file."""
    try:
        return materialise(name, companions=(SIGNATURE_SUFFIX,))
    except FileNotFoundError:
        raise ArtifactError() from None
