"""Every file the platform keeps goes through here, on Django's storage API (`storages["default"]`).

Two backends, chosen in settings from MLMANAGER_STORAGE_URL:

- unset: FileSystemStorage on MEDIA_ROOT, the local data folder. Names map to files under it
  and the engine reads those files in place.
- `s3://…`: django-storages' S3Storage on any S3-compatible store, so workers on other machines
  need no shared disk. The engine still reads local files: `materialise()` downloads an object
  into a bounded local cache (LRU by size, MLMANAGER_STORAGE_CACHE_MB) keyed by the object's
  name and ETag, so a changed object is fetched again and an unchanged one only once.

Names are relative POSIX paths (`datasets/team-1/<uuid>/data.parquet`); a "folder" is a name
prefix. A stored file becomes visible only when completely written:

- locally, it is written to a temporary sibling and renamed into place (one rename is atomic on
  one filesystem);
- on S3, a PUT (or a multipart upload) creates the object only once the upload completes, so
  uploading straight under the final key is already atomic. A temporary key then a server-side
  copy would double the traffic and add a window where both exist, for nothing.

Downloads into the cache are safe for several processes at once: each writes its own temporary
file and renames it into place, and an evicted entry is renamed away before it is removed. A
reader that holds a file open keeps reading it after eviction (POSIX unlink), but one that opens
the path again later (a training reads its Parquet file once per output) would find it gone:
such a job holds its file with `holding(name)`, a hard link of its own that eviction leaves.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import FileSystemStorage, Storage, storages
from django.http import FileResponse

logger = logging.getLogger(__name__)

__all__ = [
    "ObjectStream",
    "StoredFileResponse",
    "check_writable",
    "delete",
    "delete_folder",
    "exists",
    "holding",
    "is_local",
    "local_folder",
    "local_path",
    "materialise",
    "open_for_reading",
    "publish_folder",
    "save",
    "size",
    "updating",
    "working_path",
    "writing",
]

_CHUNK = 1 << 20
_SCRATCH = "scratch"
_CACHE = "cache"


def _storage() -> Storage:
    return storages["default"]


def is_local() -> bool:
    """True when names are files under MEDIA_ROOT (the embedded default)."""
    return isinstance(_storage(), FileSystemStorage)


def local_path(name: str) -> Path:
    """Where `name` is on disk in the local mode (tests look there); the S3 mode has no such
    place and raises NotImplementedError. Code that reads uses `materialise`, code that
    writes `writing`, `updating` or `local_folder`, which work in both modes."""
    # FileSystemStorage.path refuses a name that escapes MEDIA_ROOT (SuspiciousFileOperation).
    return Path(_storage().path(name))


_local_path = local_path


def _work_dir() -> Path:
    """This machine's own folder for the S3 mode: the download cache and scratch files."""
    return Path(settings.MLMANAGER_STORAGE_WORK_DIR)


# --- writing ---------------------------------------------------------------------------------


def save(name: str, source: Path) -> None:
    """Store the local file `source` under `name`, replacing what was there; `source` is kept."""
    if is_local():
        destination = _local_path(name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with _temporary_sibling(destination) as temporary:
            shutil.copyfile(source, temporary)
            os.replace(temporary, destination)
        return
    with open(source, "rb") as handle:
        _storage().save(name, File(handle))


@contextlib.contextmanager
def writing(name: str) -> Iterator[Path]:
    """A local path to write `name` at; stored when the block ends without an error, discarded
    otherwise, so nothing half-written is ever visible under `name`.

    Locally the path is a temporary sibling of the final file, renamed into place. On S3 it is a
    scratch file, uploaded, then removed: what is written this way (an upload, a batch's result)
    is read next by another machine or streamed from the store, so a cached copy would only
    take room.
    """
    if is_local():
        destination = _local_path(name)
        destination.parent.mkdir(parents=True, exist_ok=True)
        with _temporary_sibling(destination) as temporary:
            yield temporary
            os.replace(temporary, destination)
        return
    scratch = _work_dir() / _SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    temporary = scratch / f"{uuid.uuid4().hex}-{Path(name).name}"
    try:
        yield temporary
        save(name, temporary)
    finally:
        temporary.unlink(missing_ok=True)


@contextlib.contextmanager
def updating(name: str) -> Iterator[Path]:
    """A local path holding `name`'s current content (missing when it is not stored yet) that
    the block may rewrite (by writing a new file and renaming it over, as the engine does).

    Locally it is the stored file itself. On S3 it is a scratch copy, stored again when the
    block ends without an error and the file was created or changed, and then kept in the
    cache: the job that rewrote a dataset's Parquet file reads it next (training, a batch), so
    this machine does not download what it just wrote.
    """
    if is_local():
        path = _local_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        yield path
        return
    scratch = _work_dir() / _SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    copy = scratch / f"{uuid.uuid4().hex}-{Path(name).name}"
    try:
        before: tuple[int, int] | None = None
        if exists(name):
            shutil.copyfile(materialise(name), copy)
            before = _fingerprint(copy)
        yield copy
        if copy.is_file() and _fingerprint(copy) != before:
            save(name, copy)
            _cache_adopt(name, copy)
    finally:
        copy.unlink(missing_ok=True)


def _fingerprint(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_mtime_ns, stat.st_size


def working_path(name: str) -> Path:
    """A local path for an intermediate file of `name`'s folder that is never stored (a batch's
    input converted to Parquet): the file itself locally, a scratch file on S3. Its parent
    exists; `delete_folder` of the folder removes it too."""
    path = _local_path(name) if is_local() else _scratch_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _scratch_path(name: str) -> Path:
    root = (_work_dir() / _SCRATCH / "named").resolve()
    path = (root / name).resolve()
    if root not in path.parents:
        raise ValueError(f"name escapes the scratch folder: {name!r}")
    return path


def publish_folder(source: Path, name: str) -> None:
    """Store every file of the local folder `source` under the folder `name`, replacing it.

    Locally `source` is expected to be inside MEDIA_ROOT (see `working_path`) and becomes the
    folder with one rename. On S3 the files are uploaded one by one: the caller records the
    folder (a database row) only afterwards, and that row, not the folder, is what readers
    follow, so a folder is never read half-uploaded.
    """
    delete_folder(name)  # a retried job may have left one behind
    if is_local():
        os.replace(source, _local_path(name))
        return
    for path in sorted(source.rglob("*")):
        if path.is_file():
            save(f"{name}/{path.relative_to(source).as_posix()}", path)
    shutil.rmtree(source, ignore_errors=True)


def local_folder(name: str) -> Path:
    """A local folder to build the folder `name` in before `publish_folder` (a training run's
    files): under MEDIA_ROOT locally, so publishing is a rename; a scratch folder on S3."""
    return _local_path(name) if is_local() else _scratch_path(name)


# --- reading ---------------------------------------------------------------------------------


def exists(name: str) -> bool:
    return _storage().exists(name)


def size(name: str) -> int:
    return _storage().size(name)


def open_for_reading(name: str) -> IO[bytes]:
    """A binary stream of `name`, read in chunks as it is consumed (never whole into memory;
    S3Storage's own `open()` would buffer the whole object first). Raises FileNotFoundError.
    A download answers it with `StoredFileResponse`, which knows its length either way."""
    if is_local():
        return open(_local_path(name), "rb")
    client, bucket, key = _s3_object(name)
    try:
        response = client.get_object(Bucket=bucket, Key=key)
    except client.exceptions.NoSuchKey:
        raise FileNotFoundError(name) from None
    # An io.RawIOBase: a binary file object, which typing's IO does not describe.
    return cast(IO[bytes], ObjectStream(response["Body"], size=int(response["ContentLength"])))


class ObjectStream(io.RawIOBase):
    """An S3 object's body, read as it is consumed, with its size (from the GET's
    Content-Length): botocore's body cannot seek, so Django's FileResponse could not tell."""

    def __init__(self, body: Any, *, size: int) -> None:
        super().__init__()
        self._body = body
        self.size = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self._body.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class StoredFileResponse(FileResponse):
    """A FileResponse of an `open_for_reading` stream, with its Content-Length also when the
    stream is an object of S3 (a download's progress, and a client's check that it is whole)."""

    def set_headers(self, filelike: Any) -> None:
        super().set_headers(filelike)
        size = getattr(filelike, "size", None)
        if "Content-Length" not in self.headers and isinstance(size, int):
            self.headers["Content-Length"] = size


def materialise(name: str, *, companions: Sequence[str] = ()) -> Path:
    """A local file with the content of `name`, for the engine to read (never to write).

    Locally it is the stored file itself. On S3 it is a copy in this machine's cache, fetched
    when missing or when the object changed since. `companions` are suffixes of files that must
    sit beside it (a model's `.sig`): they are fetched into the same folder. Raises
    FileNotFoundError when `name` (or a companion) is not stored.
    """
    if is_local():
        path = _local_path(name)
        if not path.is_file():
            raise FileNotFoundError(name)
        return path
    names = [name, *(name + suffix for suffix in companions)]
    tags = [_s3_etag(each) for each in names]
    entry = _cache_entry(name, tags)
    path = entry / Path(name).name
    if path.is_file() and all((entry / Path(each).name).is_file() for each in names[1:]):
        _touch(entry)
        return path
    _remove_other_versions(name, keep=entry)
    entry.mkdir(parents=True, exist_ok=True)
    # Companions first, the file last: a reader that finds the file finds its companions too.
    for each, tag in reversed(list(zip(names, tags, strict=True))):
        _download(each, tag, entry / Path(each).name)
    _touch(entry)
    _evict(keep=entry)
    return path


@contextlib.contextmanager
def holding(name: str) -> Iterator[Path]:
    """`materialise(name)`, held for the block: a job that reads the file more than once over
    minutes (a training reads its Parquet file once per output) still finds it after the cache
    evicted its entry for other jobs' files.

    Locally it is the stored file itself. On S3 it is a hard link to the cached copy in this
    machine's scratch folder (the same filesystem: both are in the work folder), removed after
    the block: the cache's eviction removes only its own link, and the bytes stay while this
    one does (they do not count against MLMANAGER_STORAGE_CACHE_MB meanwhile)."""
    path = materialise(name)
    if is_local():
        yield path
        return
    scratch = _work_dir() / _SCRATCH
    scratch.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="held-", dir=scratch))
    held = folder / path.name
    try:
        for attempt in range(3):
            try:
                os.link(path, held)
                break
            except FileNotFoundError:  # evicted between materialise and here: fetch again
                if attempt == 2:
                    raise
                path = materialise(name)
        yield held
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- deleting --------------------------------------------------------------------------------


def delete(name: str) -> None:
    """Remove `name`; nothing happens when it is not stored."""
    if is_local():
        _local_path(name).unlink(missing_ok=True)
        return
    _storage().delete(name)


def delete_folder(name: str) -> None:
    """Remove every file under the folder `name` (and this machine's scratch files of it)."""
    if is_local():
        shutil.rmtree(_local_path(name), ignore_errors=True)
        return
    shutil.rmtree(_scratch_path(name), ignore_errors=True)
    client, bucket, key = _s3_object(name)
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=key.rstrip("/") + "/"):
        keys = [{"Key": item["Key"]} for item in page.get("Contents", ())]
        if keys:
            client.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})


# --- readiness -------------------------------------------------------------------------------


def check_writable(*, timeout_s: float = 2.0) -> None:
    """Write and remove a small file; raises when the storage cannot be written (on S3 within
    about `timeout_s`: one attempt, no retries)."""
    if is_local():
        # Created when missing, as the first upload would: a fresh install must be able to
        # become ready before anything is stored. Not its parents: a missing data folder (a
        # volume not mounted) is an error to report, not a folder to make.
        root = Path(settings.MEDIA_ROOT)
        root.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=root, prefix=".readyz-") as probe:
            probe.write(b"ok")
            probe.flush()
        return
    name = f".readyz/{uuid.uuid4().hex}"
    _client, bucket, key = _s3_object(name)
    client = _s3_probe_client(timeout_s)
    client.put_object(Bucket=bucket, Key=key, Body=b"ok")
    client.delete_object(Bucket=bucket, Key=key)


# --- the S3 side -----------------------------------------------------------------------------


def _s3_object(name: str) -> tuple[Any, str, str]:
    """boto3's client, the bucket and the key of `name` (under the storage's prefix)."""
    from storages.utils import clean_name  # django-storages; only the S3 mode needs it

    storage: Any = _storage()
    key = storage._normalize_name(clean_name(name))  # the key S3Storage itself uses
    return storage.connection.meta.client, storage.bucket_name, key


def _s3_probe_client(timeout_s: float) -> Any:
    """A client of the same store and credentials that gives up quickly (the storage's own
    client waits a minute and retries, right for transfers, too long for a probe)."""
    from botocore.config import Config

    storage: Any = _storage()
    config = Config(
        connect_timeout=timeout_s,
        read_timeout=timeout_s,
        retries={"max_attempts": 1, "mode": "standard"},
        signature_version=storage.signature_version,
        s3={"addressing_style": storage.addressing_style},
    )
    return storage._create_session().client(
        "s3",
        region_name=storage.region_name,
        endpoint_url=storage.endpoint_url,
        use_ssl=storage.use_ssl,
        verify=storage.verify,
        config=config,
    )


def _s3_etag(name: str) -> str:
    client, bucket, key = _s3_object(name)
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except client.exceptions.ClientError as error:
        if error.response.get("Error", {}).get("Code") in {"404", "NoSuchKey", "NotFound"}:
            raise FileNotFoundError(name) from None
        raise
    etag = str(head["ETag"]).strip('"')
    return f"{etag}-{head['ContentLength']}"


def _download(name: str, tag: str, destination: Path) -> None:
    """Fetch `name` as it was at `tag` into `destination` (a temporary file, then a rename)."""
    client, bucket, key = _s3_object(name)
    etag = tag.rsplit("-", 1)[0]
    # IfMatch: a change between the HEAD and this GET fails here rather than caching new
    # bytes under the old tag.
    response = client.get_object(Bucket=bucket, Key=key, IfMatch=f'"{etag}"')
    with _temporary_sibling(destination) as temporary:
        with open(temporary, "wb") as handle:
            shutil.copyfileobj(response["Body"], handle, _CHUNK)
        os.replace(temporary, destination)
    logger.info("storage: fetched %s (%s bytes) into the cache", name, destination.stat().st_size)


# --- the cache -------------------------------------------------------------------------------
#
# <work dir>/cache/<hash of name>/<hash of ETags>/<file name> (+ companions). An entry's folder
# mtime is its last use. The size counted is the files' bytes; the bound is checked after each
# download, so the cache may pass it by the one file a reader needs right now.


def _cache_root() -> Path:
    return _work_dir() / _CACHE


def _cache_entry(name: str, tags: Sequence[str]) -> Path:
    name_key = hashlib.sha256(name.encode()).hexdigest()[:32]
    tag_key = hashlib.sha256("\0".join(tags).encode()).hexdigest()[:16]
    return _cache_root() / name_key / tag_key


def _cache_adopt(name: str, written: Path) -> None:
    """Keep a file this machine just uploaded as the cache entry of `name`."""
    try:
        entry = _cache_entry(name, [_s3_etag(name)])
        _remove_other_versions(name, keep=entry)
        entry.mkdir(parents=True, exist_ok=True)
        os.replace(written, entry / Path(name).name)
        _touch(entry)
        _evict(keep=entry)
    except OSError:  # a cache that cannot keep it only costs a download later
        logger.warning("storage: could not cache %s", name, exc_info=True)


def _touch(entry: Path) -> None:
    with contextlib.suppress(OSError):
        os.utime(entry)


def _remove_other_versions(name: str, *, keep: Path) -> None:
    for other in _entries(keep.parent):
        if other != keep:
            _remove_entry(other)


def _entries(folder: Path) -> list[Path]:
    try:
        return [path for path in folder.iterdir() if path.is_dir() and "." not in path.name]
    except FileNotFoundError:
        return []


def _remove_entry(entry: Path) -> None:
    # Renamed away first, so no reader ever finds half an entry; a reader holding one of its
    # files open keeps reading it (POSIX unlink).
    doomed = entry.with_name(f"{entry.name}.evicted-{uuid.uuid4().hex}")
    try:
        entry.rename(doomed)
    except OSError:
        return
    shutil.rmtree(doomed, ignore_errors=True)


def _entry_size(entry: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for path in entry.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and not path.name.endswith(".part"):
                    total += path.stat().st_size
    return total


def _evict(*, keep: Path) -> None:
    """Remove the least recently used entries until the cache fits its bound again."""
    limit = int(settings.MLMANAGER_STORAGE_CACHE_MB) * 1024 * 1024
    entries: list[tuple[float, int, Path]] = []
    for folder in _entries(_cache_root()):
        for entry in _entries(folder):
            with contextlib.suppress(FileNotFoundError):
                entries.append((entry.stat().st_mtime, _entry_size(entry), entry))
    total = sum(size for _used, size, _entry in entries)
    for _used, entry_size, entry in sorted(entries, key=lambda item: item[0]):
        if total <= limit:
            break
        if entry == keep:
            continue
        _remove_entry(entry)
        total -= entry_size
        with contextlib.suppress(OSError):
            entry.parent.rmdir()  # only when no other version of the name is left


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    """A unique temporary name beside `path` (same filesystem: a rename moves it in place),
    removed on the way out unless it was renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.part")
    try:
        yield temporary
    finally:
        temporary.unlink(missing_ok=True)
