"""Signed model artifacts: written atomically, verified before they are ever unpickled.

An artifact is a joblib pickle plus a sibling `<name>.sig` holding the hex HMAC-SHA256 of the
pickle's exact bytes under a server-side key. Unpickling runs code, so `load_artifact` reads the
bytes once, checks them against the signature (and against the signature the caller recorded
when the artifact was made, when given) and unpickles those same bytes — never the file again,
so a file swapped between the check and the load cannot slip through.

`write_signed_bytes` / `read_signed_bytes` do the same for files that are not pickles (the
image models' safetensors weights and JSON configs): same `.sig`, same atomic write.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import joblib

logger = logging.getLogger(__name__)

SIGNATURE_SUFFIX = ".sig"
_READ_CHUNK = 1 << 20


class ArtifactError(Exception):
    """The model file is missing or is not the file the platform wrote; it was not loaded."""

    def __init__(self, message: str = "", *, code: str = "artifact_invalid"):
        message = message or (
            "The saved model file is missing or was modified, so it was not loaded. "
            "Train the model again to create a new one."
        )
        super().__init__(message)
        self.message = message
        self.code = code


def signature_path(path: Path) -> Path:
    return path.with_suffix(path.suffix + SIGNATURE_SUFFIX)


def write_artifact(obj: object, path: Path, *, key: bytes) -> str:
    """Pickle `obj` to `path` and sign it; return the hex signature.

    The pickle goes to a temporary sibling first and is fsynced; the signature file is written
    the same way; then both are renamed into place (signature first). On any error, a full
    disk included, the temporary files are removed and nothing new appears at `path`.
    """
    _check_key(key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _temporary_sibling(path) as temporary:
        joblib.dump(obj, temporary)
        _fsync_file(temporary)
        signature = _sign_file(temporary, key)
        _publish(temporary, path, signature)
    return signature


def load_artifact(path: Path, *, key: bytes, expected_signature: str | None = None) -> object:
    """Return the object pickled at `path` once its bytes match the signature.

    Raises ArtifactError when the file or its signature is missing, or the bytes do not match
    the `.sig` file or `expected_signature`; nothing is unpickled then.
    """
    data = read_signed_bytes(path, key=key, expected_signature=expected_signature)
    return joblib.load(io.BytesIO(data))


def write_signed_bytes(data: bytes, path: Path, *, key: bytes) -> str:
    """Write `data` to `path` with its `.sig`, atomically like `write_artifact`; return the
    hex signature. For files that are not pickles (safetensors weights, JSON configs)."""
    _check_key(key)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    signature = hmac.new(key, data, hashlib.sha256).hexdigest()
    with _temporary_sibling(path) as temporary:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        _publish(temporary, path, signature)
    return signature


def _publish(temporary: Path, path: Path, signature: str) -> None:
    """Move a written, fsynced file into place at `path`, its signature first (written the
    same way), so a reader never finds the file without the signature that vouches for it."""
    with _temporary_sibling(signature_path(path)) as temporary_signature:
        with open(temporary_signature, "w", encoding="ascii") as handle:
            handle.write(signature)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary_signature, signature_path(path))
    os.replace(temporary, path)
    _fsync_directory(path.parent)


def read_signed_bytes(path: Path, *, key: bytes, expected_signature: str | None = None) -> bytes:
    """The bytes at `path` once they match its `.sig` (and `expected_signature`, when given).

    Raises ArtifactError like `load_artifact`. The caller parses the returned bytes, never the
    file again, so a file swapped after the check is not what gets loaded.
    """
    _check_key(key)
    path = Path(path)
    try:
        data = path.read_bytes()
        recorded = signature_path(path).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        logger.warning("signed file %s or its signature cannot be read: %s", path, exc)
        raise ArtifactError() from exc
    if not _matches(data, key, recorded, expected_signature):
        logger.warning("signed file %s does not match its signature; refused", path)
        raise ArtifactError()
    return data


def _matches(data: bytes, key: bytes, recorded: str, expected_signature: str | None) -> bool:
    actual = hmac.new(key, data, hashlib.sha256).hexdigest()
    matches = hmac.compare_digest(actual, recorded)
    if expected_signature is not None:
        # Both comparisons always run, so timing does not tell which one failed.
        matches = hmac.compare_digest(actual, expected_signature.strip()) and matches
    return matches


def _check_key(key: bytes) -> None:
    if not isinstance(key, bytes) or not key:
        raise ValueError("the artifact key must be non-empty bytes")


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    """A temporary file next to `path`, removed unless the block moved it away."""
    descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(descriptor)
    temporary = Path(name)
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)


def _sign_file(path: Path, key: bytes) -> str:
    digest = hmac.new(key, digestmod=hashlib.sha256)
    with open(path, "rb") as handle:
        while chunk := handle.read(_READ_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _fsync_directory(directory: Path) -> None:
    # Makes the renames durable; not every platform lets a directory be opened.
    try:
        descriptor = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
