"""mlmanager.core.storage in both modes: the data folder (FileSystemStorage on MEDIA_ROOT) and
a bucket on a real S3-compatible server."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import pytest

from config.env import ConfigurationError, ObjectStorage, _object_storage
from mlmanager.core import storage
from mlmanager.ops.readiness import check_storage, readiness
from tests.storage.conftest import S3


@pytest.fixture(params=["local", "s3"])
def mode(request: pytest.FixtureRequest, settings: Any) -> str:
    if request.param == "s3":
        request.getfixturevalue("s3")
    assert storage.is_local() == (request.param == "local")
    return str(request.param)


def _write(name: str, content: bytes) -> None:
    with storage.writing(name) as path:
        path.write_bytes(content)


def test_writing_is_visible_only_once_complete(mode: str) -> None:
    with storage.writing("datasets/team-1/a/source.csv") as path:
        path.write_bytes(b"a,b\n")
        assert not storage.exists("datasets/team-1/a/source.csv")
        path.write_bytes(b"a,b\n1,2\n")
    assert storage.exists("datasets/team-1/a/source.csv")
    assert storage.size("datasets/team-1/a/source.csv") == 8
    assert storage.materialise("datasets/team-1/a/source.csv").read_bytes() == b"a,b\n1,2\n"


def test_a_failed_write_stores_nothing_and_leaves_no_temporary_file(
    mode: str, settings: Any
) -> None:
    _write("results/r.csv", b"old")
    with pytest.raises(RuntimeError), storage.writing("results/r.csv") as path:
        path.write_bytes(b"half of the new")
        raise RuntimeError("disk full")
    assert storage.materialise("results/r.csv").read_bytes() == b"old"
    local_files = [
        path
        for root in (Path(settings.MEDIA_ROOT), Path(settings.MLMANAGER_STORAGE_WORK_DIR))
        if root.exists()
        for path in root.rglob("*")
        if path.is_file()
    ]
    assert not [path for path in local_files if path.name.endswith(".part")]
    assert not [path for path in local_files if "scratch" in path.parts]


def test_read_delete_and_folders(mode: str) -> None:
    _write("batches/team-1/b/result.csv", b"x\n" * 1000)
    _write("batches/team-1/b/input.csv", b"y")
    _write("batches/team-1/other/result.csv", b"z")
    with storage.open_for_reading("batches/team-1/b/result.csv") as stream:
        assert stream.read(4) == b"x\nx\n"
        assert len(stream.read()) == 1996
    storage.delete("batches/team-1/b/input.csv")
    storage.delete("batches/team-1/b/input.csv")  # deleting twice is fine
    assert not storage.exists("batches/team-1/b/input.csv")
    storage.delete_folder("batches/team-1/b")
    assert not storage.exists("batches/team-1/b/result.csv")
    assert storage.exists("batches/team-1/other/result.csv")  # a sibling folder stays
    with pytest.raises(FileNotFoundError):
        storage.materialise("batches/team-1/b/result.csv")
    with pytest.raises(FileNotFoundError):
        storage.open_for_reading("batches/team-1/b/result.csv")


def test_a_stored_file_is_downloaded_with_its_length(mode: str) -> None:
    """A download (`StoredFileResponse` of an `open_for_reading` stream) says how long it is,
    also from S3, whose bodies cannot seek; and streams the whole file."""
    content = bytes(range(256)) * 5000  # 1.28 MB: more than one block of the response
    _write("batches/team-1/c/result.parquet", content)
    response = storage.StoredFileResponse(
        storage.open_for_reading("batches/team-1/c/result.parquet"),
        as_attachment=True,
        filename="result.parquet",
    )
    assert response["Content-Length"] == str(len(content))
    assert b"".join(response.streaming_content) == content
    response.close()


def test_updating_stores_a_rewritten_file_and_creates_a_missing_one(mode: str) -> None:
    with storage.updating("datasets/d/data.parquet") as path:
        assert not path.exists()
        path.write_bytes(b"first")
    assert storage.materialise("datasets/d/data.parquet").read_bytes() == b"first"
    with storage.updating("datasets/d/data.parquet") as path:
        assert path.read_bytes() == b"first"
        replacement = path.with_name("replacement")
        replacement.write_bytes(b"second, longer")
        os.replace(replacement, path)
    assert storage.materialise("datasets/d/data.parquet").read_bytes() == b"second, longer"
    # A failure before the rename (the engine writes a new file, then renames it over).
    with pytest.raises(RuntimeError), storage.updating("datasets/d/data.parquet") as path:
        path.with_name("replacement").write_bytes(b"broken")
        raise RuntimeError("conversion failed")
    assert storage.materialise("datasets/d/data.parquet").read_bytes() == b"second, longer"


def test_a_published_folder_replaces_the_old_one(mode: str) -> None:
    _write("models/m/run-1/stale.joblib", b"old")
    work = storage.local_folder("models/m/run-1.partial")
    (work / "output-0").mkdir(parents=True)
    (work / "output-0" / "model.joblib").write_bytes(b"model")
    (work / "output-0" / "model.joblib.sig").write_bytes(b"signature")
    storage.publish_folder(work, "models/m/run-1")
    assert not work.exists()
    assert not storage.exists("models/m/run-1/stale.joblib")
    path = storage.materialise("models/m/run-1/output-0/model.joblib", companions=(".sig",))
    assert path.read_bytes() == b"model"
    assert path.with_name("model.joblib.sig").read_bytes() == b"signature"


def test_readiness_writes_and_removes_a_probe(mode: str, s3_or_none: Any) -> None:
    assert check_storage() == "ok"
    if s3_or_none is not None:
        assert s3_or_none.stored_keys() == []  # the probe left nothing behind


@pytest.fixture
def s3_or_none(mode: str, request: pytest.FixtureRequest) -> S3 | None:
    return request.getfixturevalue("s3") if mode == "s3" else None


def test_local_files_are_the_stored_files_themselves(settings: Any) -> None:
    _write("datasets/team-1/a/data.parquet", b"pq")
    path = storage.materialise("datasets/team-1/a/data.parquet")
    assert path == Path(settings.MEDIA_ROOT).resolve() / "datasets/team-1/a/data.parquet"


def test_names_cannot_escape_the_storage(settings: Any) -> None:
    with pytest.raises(Exception, match=r"outside|denied|escapes"):
        storage.materialise("../secret_key")


# --- the S3 mode's cache -----------------------------------------------------------------------


def test_an_unchanged_object_is_fetched_once_and_a_changed_one_again(
    s3: S3, monkeypatch: pytest.MonkeyPatch
) -> None:
    fetched: list[str] = []
    download = storage._download

    def counting(name: str, tag: str, destination: Path) -> None:
        fetched.append(name)
        download(name, tag, destination)

    monkeypatch.setattr(storage, "_download", counting)
    key = "files/datasets/d/data.parquet"
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"version one")
    first = storage.materialise("datasets/d/data.parquet")
    again = storage.materialise("datasets/d/data.parquet")
    assert first == again
    assert first.read_bytes() == b"version one"
    assert fetched == ["datasets/d/data.parquet"]
    # Another machine replaces the object (same size, other bytes): fetched again.
    s3.client.put_object(Bucket=s3.bucket, Key=key, Body=b"version two")
    changed = storage.materialise("datasets/d/data.parquet")
    assert changed.read_bytes() == b"version two"
    assert fetched == ["datasets/d/data.parquet"] * 2
    assert not first.exists()  # the old copy is gone from the cache


def test_a_file_this_machine_updated_is_not_downloaded_again(
    s3: S3, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    with storage.updating("datasets/d/data.parquet") as path:
        path.write_bytes(b"converted here")
    monkeypatch.setattr(storage, "_download", lambda *args: pytest.fail("downloaded"))
    assert storage.materialise("datasets/d/data.parquet").read_bytes() == b"converted here"
    assert s3.stored_keys() == ["files/datasets/d/data.parquet"]


def test_a_written_file_is_not_kept_on_this_machine(s3: S3, settings: Any) -> None:
    _write("batches/b/predictions.csv", b"a result the web streams from the store")
    assert s3.stored_keys() == ["files/batches/b/predictions.csv"]
    work = Path(settings.MLMANAGER_STORAGE_WORK_DIR)
    assert [path for path in work.rglob("*") if path.is_file()] == []


def _cache_bytes(settings: Any) -> int:
    cache = Path(settings.MLMANAGER_STORAGE_WORK_DIR) / "cache"
    return sum(path.stat().st_size for path in cache.rglob("*") if path.is_file())


def test_the_cache_keeps_to_its_bound_by_evicting_the_least_recently_used(
    s3: S3, settings: Any
) -> None:
    settings.MLMANAGER_STORAGE_CACHE_MB = 1
    size = 400 * 1024
    for name in ("a", "b", "c"):
        s3.client.put_object(Bucket=s3.bucket, Key=f"files/{name}.bin", Body=name.encode() * size)
    a = storage.materialise("a.bin")
    b = storage.materialise("b.bin")
    # Use order by the entries' folder times, set apart explicitly: file times are only as fine
    # as the kernel's clock tick, so two quick uses may share one.
    os.utime(b.parent, (1_000_000, 1_000_000))
    os.utime(a.parent, (2_000_000, 2_000_000))
    assert storage.materialise("a.bin") == a  # a hit: a is now the most recently used
    c = storage.materialise("c.bin")
    assert a.is_file()
    assert c.is_file()
    assert not b.exists()  # the least recently used went
    assert _cache_bytes(settings) == 2 * size <= 1024 * 1024
    # Evicted is not lost: it comes back from the store.
    assert storage.materialise("b.bin").read_bytes() == b"b" * size


def test_a_held_file_outlives_its_eviction_from_the_cache(s3: S3, settings: Any) -> None:
    """A job holding its file (`storage.holding`: a training reads its Parquet file once per
    output, minutes apart) opens it again after other jobs' files evicted its cache entry;
    nothing of it stays on this machine after the block."""
    settings.MLMANAGER_STORAGE_CACHE_MB = 1
    size = 600 * 1024
    for name in ("held", "other"):
        s3.client.put_object(Bucket=s3.bucket, Key=f"files/{name}.bin", Body=name.encode() * size)
    work = Path(settings.MLMANAGER_STORAGE_WORK_DIR)
    with storage.holding("held.bin") as held:
        cached = storage.materialise("held.bin")
        assert held != cached and held.read_bytes() == b"held" * size
        storage.materialise("other.bin")  # over the bound: the held file's entry goes
        assert not cached.exists()
        assert held.read_bytes() == b"held" * size  # opened again, whole
    assert not held.exists()
    assert [path.name for path in work.rglob("*") if path.is_file()] == ["other.bin"]


def test_a_local_file_is_held_as_it_is(settings: Any) -> None:
    _write("datasets/d/data.parquet", b"local")
    with storage.holding("datasets/d/data.parquet") as held:
        assert held == storage.local_path("datasets/d/data.parquet")
    assert held.read_bytes() == b"local"  # the stored file itself, kept


def test_a_file_larger_than_the_cache_is_still_served(s3: S3, settings: Any) -> None:
    settings.MLMANAGER_STORAGE_CACHE_MB = 1
    s3.client.put_object(Bucket=s3.bucket, Key="files/big.bin", Body=b"x" * (1536 * 1024))
    assert storage.materialise("big.bin").stat().st_size == 1536 * 1024


def test_concurrent_readers_of_one_object_all_get_it_whole(s3: S3, settings: Any) -> None:
    body = os.urandom(3 * 1024 * 1024)
    s3.client.put_object(Bucket=s3.bucket, Key="files/shared.bin", Body=body)
    results: list[bytes] = []
    errors: list[BaseException] = []

    def read() -> None:
        try:
            results.append(storage.materialise("shared.bin").read_bytes())
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [body] * 4
    leftovers = [
        path
        for path in (Path(settings.MLMANAGER_STORAGE_WORK_DIR) / "cache").rglob("*")
        if path.is_file() and path.name != "shared.bin"
    ]
    assert leftovers == []


def test_readiness_reports_a_store_that_does_not_answer(s3: S3, settings: Any) -> None:
    settings.STORAGES["default"]["OPTIONS"]["endpoint_url"] = "http://127.0.0.1:9"  # closed
    settings.STORAGES = {**settings.STORAGES}  # a new storage with the new options
    result = readiness()
    assert not result.ready
    assert result.checks["storage"].startswith("EndpointConnectionError")


# --- MLMANAGER_STORAGE_URL -----------------------------------------------------------------------


def test_the_storage_url_unset_means_the_data_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLMANAGER_STORAGE_URL", raising=False)
    assert _object_storage("MLMANAGER_STORAGE_URL") is None


def test_the_storage_url_names_bucket_prefix_and_endpoint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(
        "MLMANAGER_STORAGE_URL",
        "s3://ml-files/prod/eu?endpoint_url=http://127.0.0.1:9000&region=eu-west-1",
    )
    assert _object_storage("MLMANAGER_STORAGE_URL") == ObjectStorage(
        bucket="ml-files",
        prefix="prod/eu",
        endpoint_url="http://127.0.0.1:9000",
        region="eu-west-1",
        addressing_style="path",
    )
    monkeypatch.setenv("MLMANAGER_STORAGE_URL", "s3://ml-files")
    location = _object_storage("MLMANAGER_STORAGE_URL")
    assert location == ObjectStorage("ml-files", "", "", "us-east-1", "auto")
    assert location.storage_options()["endpoint_url"] is None


@pytest.mark.parametrize(
    "url",
    [
        "gs://bucket",
        "s3:///prefix-without-bucket",
        "s3://key:secret@bucket",
        "s3://bucket?endpoint=http://127.0.0.1:9000",
        "s3://bucket?endpoint_url=ftp://127.0.0.1",
        "s3://bucket?addressing_style=sideways",
    ],
)
def test_a_wrong_storage_url_is_refused(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLMANAGER_STORAGE_URL", url)
    with pytest.raises(ConfigurationError, match="MLMANAGER_STORAGE_URL") as refused:
        _object_storage("MLMANAGER_STORAGE_URL")
    assert "secret" not in str(refused.value)  # a key pasted into the URL is not echoed
