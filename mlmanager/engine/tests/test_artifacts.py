from __future__ import annotations

import errno
from pathlib import Path

import joblib
import pytest

from mlmanager.engine import artifacts
from mlmanager.engine.artifacts import ArtifactError, load_artifact, write_artifact

KEY = b"test-key"


class WritesMarker:
    """Unpickling this runs code: it creates the marker file. Proof that bytes were unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_round_trip_returns_the_signature_and_the_object(tmp_path: Path):
    path = tmp_path / "models" / "model.joblib"
    signature = write_artifact({"weights": [1, 2, 3]}, path, key=KEY)

    assert len(signature) == 64
    assert (tmp_path / "models" / "model.joblib.sig").read_text() == signature
    assert load_artifact(path, key=KEY) == {"weights": [1, 2, 3]}
    assert load_artifact(path, key=KEY, expected_signature=signature) == {"weights": [1, 2, 3]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.joblib", "model.joblib.sig"]


def test_a_tampered_byte_is_refused_without_unpickling(tmp_path: Path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    write_artifact(WritesMarker(marker), path, key=KEY)
    load_artifact(path, key=KEY)  # the untampered file does run __reduce__
    assert marker.exists()
    marker.unlink()
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))

    with pytest.raises(ArtifactError, match="missing or was modified"):
        load_artifact(path, key=KEY)
    assert not marker.exists()


def test_a_replaced_file_with_its_own_signature_is_refused_by_the_expected_signature(
    tmp_path: Path,
):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    recorded = write_artifact({"a": 1}, path, key=KEY)
    # Someone with the key (or an old artifact) swaps in another signed file.
    write_artifact(WritesMarker(marker), path, key=KEY)

    with pytest.raises(ArtifactError):
        load_artifact(path, key=KEY, expected_signature=recorded)
    assert not marker.exists()


def test_a_wrong_key_is_refused(tmp_path: Path):
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    write_artifact(WritesMarker(marker), path, key=KEY)

    with pytest.raises(ArtifactError):
        load_artifact(path, key=b"another-key")
    assert not marker.exists()


def test_a_missing_signature_or_file_is_refused(tmp_path: Path):
    path = tmp_path / "model.joblib"
    write_artifact([1], path, key=KEY)
    (tmp_path / "model.joblib.sig").unlink()
    with pytest.raises(ArtifactError):
        load_artifact(path, key=KEY)
    with pytest.raises(ArtifactError):
        load_artifact(tmp_path / "nothing.joblib", key=KEY)


def test_an_unpickled_payload_is_never_written_by_a_pickle_without_signature(tmp_path: Path):
    # A pickle placed by hand (as an attacker could) is refused even with a .sig of garbage.
    marker = tmp_path / "unpickled"
    path = tmp_path / "model.joblib"
    joblib.dump(WritesMarker(marker), path)
    (tmp_path / "model.joblib.sig").write_text("0" * 64)
    with pytest.raises(ArtifactError):
        load_artifact(path, key=KEY)
    assert not marker.exists()


@pytest.mark.parametrize("target", ["dump", "fsync"])
def test_a_full_disk_leaves_nothing_behind(tmp_path: Path, monkeypatch, target: str):
    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    if target == "dump":
        monkeypatch.setattr(artifacts.joblib, "dump", disk_full)
    else:
        monkeypatch.setattr(artifacts.os, "fsync", disk_full)
    folder = tmp_path / "models"
    folder.mkdir()
    path = folder / "model.joblib"

    with pytest.raises(OSError, match="No space left"):
        write_artifact({"a": 1}, path, key=KEY)
    assert list(folder.iterdir()) == []


def test_a_failed_rewrite_keeps_the_previous_artifact_loadable(tmp_path: Path, monkeypatch):
    folder = tmp_path / "models"
    path = folder / "model.joblib"
    signature = write_artifact({"version": 1}, path, key=KEY)

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(artifacts.os, "fsync", disk_full)
        with pytest.raises(OSError):
            write_artifact({"version": 2}, path, key=KEY)

    assert load_artifact(path, key=KEY, expected_signature=signature) == {"version": 1}
    assert sorted(p.name for p in folder.iterdir()) == ["model.joblib", "model.joblib.sig"]


def test_the_key_must_be_bytes(tmp_path: Path):
    with pytest.raises(ValueError):
        write_artifact(1, tmp_path / "m.joblib", key=b"")
