"""Reading an untrusted zip: which entries may be read, and reading one without trusting it.

Nothing here writes an entry to disk or uses its name as a path: entries are read into memory
one at a time, and every read is bounded by the bytes actually inflated, not by the sizes the
archive declares (a zip bomb declares small sizes and inflates to gigabytes).
"""

from __future__ import annotations

import dataclasses
import re
import stat
import struct
import zipfile
from pathlib import Path, PurePosixPath

from mlmanager.engine.ingest.errors import IngestError

# Inflating in chunks of this size lets every limit stop a read within one chunk of it.
READ_CHUNK_BYTES = 1 << 20
# The compression-ratio guard starts once an entry has inflated this much: small files (a
# blank 64×64 BMP) compress far better than 200× and cost nothing to read.
RATIO_GUARD_FROM_BYTES = 1 << 20

# Files that archivers and operating systems add beside the user's: never images, never shown.
_IGNORED_NAMES = {"thumbs.db", "desktop.ini"}
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:")

_END_OF_DIRECTORY = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_END_OF_DIRECTORY = b"PK\x06\x06"
# The end-of-directory record is 22 bytes plus a comment of at most 65 535.
_END_OF_DIRECTORY_SEARCH = 22 + 0xFFFF


@dataclasses.dataclass(frozen=True)
class ArchiveLimits:
    """How much of an archive is read: entries listed, bytes inflated per file and in total,
    and how far one entry may inflate beyond its compressed size."""

    max_entries: int
    max_file_bytes: int
    max_total_bytes: int
    max_compression_ratio: float


class EntryRefused(Exception):
    """One entry cannot be used; the message is the reason listed to the user."""


class ArchiveTotal:
    """Bytes inflated so far across the archive, against the total limit."""

    def __init__(self, limit: int):
        self.limit = limit
        self.bytes = 0

    def add(self, count: int) -> None:
        self.bytes += count
        if self.bytes > self.limit:
            raise IngestError(
                f"The archive inflates to more than {self.limit:,} bytes; this server reads at "
                "most that much (MLMANAGER_MAX_ZIP_UNCOMPRESSED_BYTES).",
                code="archive_too_large",
            )


def declared_entry_count(path: Path) -> int | None:
    """The entry count the archive's end-of-directory record declares, read from its last
    64 KB before `zipfile` parses the whole directory into memory (millions of entries would
    cost gigabytes). None when no record is found: zipfile then reports the damage."""
    size = path.stat().st_size
    with path.open("rb") as file:
        start = max(0, size - _END_OF_DIRECTORY_SEARCH)
        file.seek(start)
        tail = file.read()
    position = tail.rfind(_END_OF_DIRECTORY)
    if position < 0 or len(tail) - position < 22:
        return None
    (count,) = struct.unpack_from("<H", tail, position + 10)
    if count != 0xFFFF:
        return int(count)
    locator = position - 20
    if locator < 0 or tail[locator : locator + 4] != _ZIP64_LOCATOR:
        return int(count)
    (record_offset,) = struct.unpack_from("<Q", tail, locator + 8)
    with path.open("rb") as file:
        file.seek(record_offset)
        record = file.read(56)
    if len(record) < 56 or record[:4] != _ZIP64_END_OF_DIRECTORY:
        return None
    (count64,) = struct.unpack_from("<Q", record, 32)
    return int(count64)


def open_archive(path: Path, limits: ArchiveLimits) -> zipfile.ZipFile:
    """Open the zip at `path`, refusing one that is not a zip or lists too many entries."""
    declared = declared_entry_count(path)
    if declared is not None and declared > limits.max_entries:
        raise too_many_entries_error(declared, limits.max_entries)
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError):
        raise IngestError(
            "The file is not a readable zip archive (damaged or not a zip).", code="invalid_zip"
        ) from None
    # The declared count can lie smaller than the directory really is.
    if len(archive.infolist()) > limits.max_entries:
        count = len(archive.infolist())
        archive.close()
        raise too_many_entries_error(count, limits.max_entries)
    return archive


def too_many_entries_error(count: int, max_entries: int) -> IngestError:
    return IngestError(
        f"The archive lists {count:,} entries; at most {max_entries:,} are read "
        "(MLMANAGER_MAX_IMAGES, with room for masks and folders).",
        code="too_many_files",
    )


def is_ignored(name: str) -> bool:
    """Entries added by operating systems and archivers (macOS resource forks, dot files,
    Windows thumbnails): skipped silently, as the user never put them there."""
    parts = PurePosixPath(name).parts
    if not parts:
        return True
    if parts[0] == "__MACOSX":
        return True
    return any(part.startswith(".") and part not in {".", ".."} for part in parts) or (
        parts[-1].lower() in _IGNORED_NAMES
    )


def refusal_reason(info: zipfile.ZipInfo) -> str | None:
    """Why an entry is not read at all (an unsafe name, a link, encryption), or None.

    The name is never used as a path, but a name that would leave the dataset's folder, or a
    link, marks an archive built to attack an extractor; such entries are listed, not read."""
    name = info.filename
    if "\\" in name:
        return "unsafe name: contains a backslash"
    if name.startswith("/"):
        return "unsafe name: absolute path"
    if _DRIVE_LETTER.match(name):
        return "unsafe name: drive letter"
    if ".." in PurePosixPath(name).parts:
        return "unsafe name: “..” leaves the folder"
    if "\x00" in name:
        return "unsafe name: contains a NUL character"
    # Unix file type bits; archivers on other systems leave them 0 for an ordinary file.
    file_type = stat.S_IFMT(info.external_attr >> 16)
    if file_type == stat.S_IFLNK:
        return "symbolic link: links are not followed"
    if file_type and file_type not in {stat.S_IFREG, stat.S_IFDIR}:
        return "not a regular file"
    if info.flag_bits & 0x1:
        return "encrypted: password-protected files cannot be read"
    return None


def read_entry(
    archive: zipfile.ZipFile,
    info: zipfile.ZipInfo,
    limits: ArchiveLimits,
    total: ArchiveTotal,
    *,
    max_bytes: int | None = None,
) -> bytes:
    """The entry's bytes, inflated in chunks and bounded by what is actually read.

    Raises EntryRefused past the per-file limit (`max_bytes`, default the limits') or the
    compression ratio, and IngestError past the archive's total. `zipfile` reads at most the
    declared compressed size from the file, so bytes out over that size is a true ratio."""
    file_limit = limits.max_file_bytes if max_bytes is None else max_bytes
    if info.file_size > file_limit:
        raise EntryRefused(f"larger than {file_limit:,} bytes")
    compressed = max(info.compress_size, 1)
    chunks: list[bytes] = []
    read = 0
    try:
        with archive.open(info) as entry:
            while chunk := entry.read(READ_CHUNK_BYTES):
                read += len(chunk)
                total.add(len(chunk))
                if read > file_limit:
                    raise EntryRefused(f"larger than {file_limit:,} bytes")
                if (
                    read > RATIO_GUARD_FROM_BYTES
                    and read > limits.max_compression_ratio * compressed
                ):
                    raise EntryRefused(
                        f"inflates more than {limits.max_compression_ratio:g}× its compressed "
                        "size (a zip bomb?)"
                    )
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, NotImplementedError) as error:
        raise EntryRefused(f"damaged in the archive ({_short(error)})") from None
    except RuntimeError as error:  # zipfile's word for an encrypted entry
        raise EntryRefused(f"cannot be read ({_short(error)})") from None
    return b"".join(chunks)


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 120 else text[:119] + "…"
