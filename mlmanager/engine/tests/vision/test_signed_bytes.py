"""engine.artifacts.write_signed_bytes / read_signed_bytes (weights and configs of image
models)."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path

import pytest

from mlmanager.engine.artifacts import ArtifactError, read_signed_bytes, write_signed_bytes

KEY = b"signed-bytes-key"


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "weights.safetensors"

    signature = write_signed_bytes(b"tensor bytes", path, key=KEY)

    assert signature == hmac.new(KEY, b"tensor bytes", hashlib.sha256).hexdigest()
    assert path.read_bytes() == b"tensor bytes"
    assert (tmp_path / "deep" / "weights.safetensors.sig").read_text() == signature
    assert read_signed_bytes(path, key=KEY, expected_signature=signature) == b"tensor bytes"
    assert [entry.name for entry in sorted(path.parent.iterdir())] == [
        "weights.safetensors",
        "weights.safetensors.sig",
    ]  # no temporary files left behind


def test_overwrite_replaces_both_files(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    write_signed_bytes(b"{}", path, key=KEY)

    signature = write_signed_bytes(b'{"a": 1}', path, key=KEY)

    assert read_signed_bytes(path, key=KEY, expected_signature=signature) == b'{"a": 1}'


def test_tampered_bytes_wrong_key_and_other_signature_refused(tmp_path: Path) -> None:
    path = tmp_path / "model.json"
    signature = write_signed_bytes(b"original", path, key=KEY)

    with pytest.raises(ArtifactError):
        read_signed_bytes(path, key=b"other key")
    with pytest.raises(ArtifactError):
        read_signed_bytes(path, key=KEY, expected_signature="0" * 64)
    path.write_bytes(b"modified")
    with pytest.raises(ArtifactError):
        read_signed_bytes(path, key=KEY)
    with pytest.raises(ArtifactError):
        read_signed_bytes(path, key=KEY, expected_signature=signature)


def test_missing_signature_or_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "member-0.safetensors"
    write_signed_bytes(b"x", path, key=KEY)
    (tmp_path / "member-0.safetensors.sig").unlink()

    with pytest.raises(ArtifactError):
        read_signed_bytes(path, key=KEY)
    with pytest.raises(ArtifactError):
        read_signed_bytes(tmp_path / "absent", key=KEY)


def test_empty_key_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_signed_bytes(b"x", tmp_path / "f", key=b"")
