"""Tell what kind of file an upload is: its format, and for text its encoding.

Only the start of the file is read; binary files with a table's name are refused here, before
any reader sees them.
"""

from __future__ import annotations

import codecs
import dataclasses
import io
import json
import string
import unicodedata
import zipfile
from pathlib import Path

import charset_normalizer

from mlmanager.engine.ingest.errors import IngestError

SUPPORTED_EXTENSIONS = {".csv", ".tsv", ".txt", ".parquet", ".xlsx", ".jsonl", ".ndjson"}

# Encoding, dialect and format are guessed from the start of the file only.
SAMPLE_BYTES = 1 << 20

# Share of NUL bytes above which a sample is binary rather than text with stray NULs.
BINARY_NUL_SHARE = 0.30
# Share of other control bytes (NULs removed) above which a sample is binary: random bytes
# have about 11 %, text almost none.
BINARY_CONTROL_SHARE = 0.05
# Western text decoded as Windows-1252 has few accented letters, whereas Cyrillic or Greek text
# from a single-byte code page decodes to almost nothing but accented Latin letters.
WESTERN_MAX_ACCENTED_SHARE = 0.30

_PARQUET_MAGIC = b"PAR1"
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
# Only signatures that cannot start a text file; other binaries are caught by byte statistics.
_BINARY_SIGNATURES = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",
    b"GIF87a",
    b"GIF89a",
    b"%PDF-",
    b"\x7fELF",
    b"\x1f\x8b",
    b"7z\xbc\xaf\x27\x1c",
    b"Rar!\x1a\x07",
    b"\xfd7zXZ\x00",
    b"\x28\xb5\x2f\xfd",
    b"SQLite format 3\x00",
    b"\xcf\xfa\xed\xfe",
    b"\xfe\xed\xfa\xcf",
)
_CONTROL_BYTES = bytes([*range(0x01, 0x09), *range(0x0E, 0x1A), *range(0x1C, 0x20), 0x7F])


@dataclasses.dataclass(frozen=True)
class TextSample:
    """The start of a text file, decoded, with NUL characters removed."""

    text: str
    encoding: str
    # The sample is the whole file, so its last line is not cut short.
    complete: bool


def detect_format(path: Path, original_name: str) -> str:
    """Return "csv", "parquet", "excel" or "jsonl" for the file at `path`.

    The content decides first (Parquet and zip magic, one JSON object per line); the extension of
    `original_name` decides for files whose content is damaged, so that a truncated .parquet is
    reported as a corrupt Parquet file rather than as unreadable text.
    """
    path = Path(path)
    extension = Path(original_name).suffix.lower()
    sample, complete = _read_start(path)
    if not sample:
        raise IngestError("The file is empty.", code="empty_file")

    if sample.startswith(_PARQUET_MAGIC):
        return "parquet"
    if sample.startswith(_ZIP_MAGIC):
        if _zip_has_excel_entries(path) or extension == ".xlsx":
            return "excel"
        raise IngestError(
            "This is a ZIP archive, not a table. Upload the CSV, Excel or Parquet file inside it.",
            code="unsupported_format",
        )
    if sample.startswith(_OLE_MAGIC):
        raise IngestError(
            "Old Excel files (.xls) are not supported. Save the sheet as .xlsx or CSV and "
            "upload that.",
            code="unsupported_format",
        )
    if sample.startswith(_BINARY_SIGNATURES):
        raise _binary_file_error()
    if extension == ".parquet":
        return "parquet"
    if extension == ".xlsx":
        return "excel"
    if extension not in SUPPORTED_EXTENSIONS:
        supported = ", ".join(sorted(SUPPORTED_EXTENSIONS))
        raise IngestError(
            f"Files of type “{extension or 'without extension'}” are not supported. "
            f"Upload one of: {supported}.",
            code="unsupported_format",
        )

    text_sample = _decode_sample(sample, complete=complete)
    if not text_sample.text.strip() and (complete or _is_blank_file(path, text_sample.encoding)):
        raise IngestError("The file is empty.", code="empty_file")
    if extension in {".jsonl", ".ndjson"} or _looks_like_json_lines(text_sample.text):
        return "jsonl"
    return "csv"


def read_text_sample(path: Path) -> TextSample:
    """Decode the start of a text file, naming its encoding; binary content is refused."""
    sample, complete = _read_start(path)
    return _decode_sample(sample, complete=complete)


def _read_start(path: Path) -> tuple[bytes, bool]:
    size = path.stat().st_size
    with path.open("rb") as file:
        sample = file.read(SAMPLE_BYTES)
    return sample, size <= len(sample)


def _decode_sample(sample: bytes, *, complete: bool) -> TextSample:
    encoding = _detect_encoding(sample, complete=complete)
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    text = decoder.decode(sample, final=complete).replace("\x00", "")
    return TextSample(text=text, encoding=encoding, complete=complete)


def _binary_file_error() -> IngestError:
    return IngestError(
        "This file is not a text table: it looks like a binary file (for example an image or "
        "a program) with a table's file name. Upload a CSV, Excel, Parquet or JSON Lines file.",
        code="binary_file",
    )


def _zip_has_excel_entries(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.startswith("xl/") for name in archive.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _detect_encoding(sample: bytes, *, complete: bool) -> str:
    """Name the text encoding of `sample`, or raise binary_file if it is not text."""
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        return "utf-32"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    utf16 = _guess_utf16_without_bom(sample)
    if utf16:
        return utf16
    if sample.count(0) > BINARY_NUL_SHARE * len(sample):
        raise _binary_file_error()
    text_bytes = sample.replace(b"\x00", b"")
    control_count = len(text_bytes) - len(text_bytes.translate(None, _CONTROL_BYTES))
    if control_count > BINARY_CONTROL_SHARE * max(len(text_bytes), 1):
        raise _binary_file_error()
    try:
        codecs.getincrementaldecoder("utf-8")().decode(text_bytes, final=complete)
    except UnicodeDecodeError:
        pass
    else:
        return "utf-8"
    if _looks_like_western_text(text_bytes):
        return "cp1252"
    best = charset_normalizer.from_bytes(text_bytes).best()
    if best is None:
        raise _binary_file_error()
    return codecs.lookup(best.encoding).name


def _guess_utf16_without_bom(sample: bytes) -> str | None:
    # ASCII-range text in UTF-16 has a NUL in every other byte, on one side only.
    if len(sample) < 8:
        return None
    even_nul = sample[0::2].count(0) / len(sample[0::2])
    odd_nul = sample[1::2].count(0) / len(sample[1::2])
    if odd_nul > 0.4 and even_nul < 0.05:
        candidate = "utf-16-le"
    elif even_nul > 0.4 and odd_nul < 0.05:
        candidate = "utf-16-be"
    else:
        return None
    try:
        codecs.getincrementaldecoder(candidate)().decode(sample, final=False)
    except UnicodeDecodeError:
        return None
    return candidate


def _looks_like_western_text(text_bytes: bytes) -> bool:
    try:
        text = text_bytes.decode("cp1252")
    except UnicodeDecodeError:
        return False
    accented_letters = 0
    for character in {c for c in text if ord(c) > 127}:
        category = unicodedata.category(character)
        if category.startswith("C"):
            return False
        if category.startswith("L"):
            if "LATIN" not in unicodedata.name(character, ""):
                return False
            accented_letters += text.count(character)
    ascii_letters = sum(text.count(c) for c in string.ascii_letters)
    return accented_letters <= WESTERN_MAX_ACCENTED_SHARE * max(ascii_letters + accented_letters, 1)


def _is_blank_file(path: Path, encoding: str) -> bool:
    with path.open("rb") as raw:
        stream = io.TextIOWrapper(raw, encoding=encoding, errors="replace")
        while chunk := stream.read(SAMPLE_BYTES):
            if chunk.replace("\x00", "").strip():
                return False
    return True


def _looks_like_json_lines(text: str) -> bool:
    first_line = next((line.strip() for line in text.splitlines() if line.strip()), "")
    if not first_line.startswith("{"):
        return False
    try:
        return isinstance(json.loads(first_line), dict)
    except (ValueError, RecursionError):
        return False
