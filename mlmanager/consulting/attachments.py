"""A request's attachment: checked before anything is kept, stored through core.storage.

The body already streamed through the upload size limit (core.uploads, every upload's);
here the file must be small enough for an attachment, of an allowed type by its name *and*
its first bytes, and have a name that can be shown. The stored name is chosen by the server
(`consulting/team-<id>/<uuid>/attachment<ext>`); the client's name, sanitised, is only shown
and sent back as the download's name.
"""

from __future__ import annotations

import re
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import IO

from django.core.files.uploadedfile import UploadedFile
from django.http import FileResponse
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

from mlmanager.core import storage
from mlmanager.core.errors import ApplicationError, NotFound, PayloadTooLarge

# Documents, pictures, small data extracts and zips of them: what a consultant reads first.
MAX_ATTACHMENT_BYTES = 20 * 1024 * 1024
MAX_FILENAME_LENGTH = 120

_PDF, _PNG, _JPEG, _ZIP, _TEXT = "pdf", "png", "jpeg", "zip", "text"
ALLOWED_EXTENSIONS: dict[str, str] = {
    ".pdf": _PDF,
    ".png": _PNG,
    ".jpg": _JPEG,
    ".jpeg": _JPEG,
    ".zip": _ZIP,
    ".csv": _TEXT,
    ".txt": _TEXT,
}
_SIGNATURES: dict[str, tuple[bytes, ...]] = {
    _PDF: (b"%PDF-",),
    _PNG: (b"\x89PNG\r\n\x1a\n",),
    _JPEG: (b"\xff\xd8\xff",),
    # A zip starts with a local file header, or is an empty archive's end record.
    _ZIP: (b"PK\x03\x04", b"PK\x05\x06"),
}
# Text is read this far: valid UTF-8 (a cut multi-byte character at the end allowed) and no
# NUL byte, which no CSV or text file holds and every binary file does.
_TEXT_SNIFF_BYTES = 64 * 1024
_UNSAFE_CHARACTERS = re.compile(r"[^\w .()+,-]+")


@dataclass(frozen=True)
class CheckedAttachment:
    upload: UploadedFile
    filename: str
    extension: str
    size: int


def _refused(message: str, code: str, **details: object) -> ApplicationError:
    return ApplicationError(message, code=code, details=dict(details), status_code=400)


def sanitised_filename(raw: str) -> str:
    """The client's name as shown: its last path part, without control characters, with
    anything but letters, digits and a few marks replaced; refused (400 `invalid_filename`)
    when nothing showable remains or it holds control characters (a NUL, a new line)."""
    if any(unicodedata.category(character) == "Cc" for character in raw):
        raise _refused(
            _("The file name holds control characters."), "invalid_filename", filename=raw[:200]
        )
    name = PurePosixPath(raw.replace("\\", "/")).name
    name = unicodedata.normalize("NFC", name)
    # Leading dots would hide the file on a Unix desktop; trailing ones are dropped by Windows.
    name = _UNSAFE_CHARACTERS.sub("_", name).strip(" .")
    if not name or not PurePosixPath(name).stem.strip(" ._"):
        raise _refused(_("The file has no usable name."), "invalid_filename", filename=raw[:200])
    if len(name) > MAX_FILENAME_LENGTH:
        suffix = PurePosixPath(name).suffix[:10]
        name = name[: MAX_FILENAME_LENGTH - len(suffix)] + suffix
    return name


def _head(upload: UploadedFile, size: int) -> bytes:
    upload.seek(0)
    head = upload.read(size)
    upload.seek(0)
    return head


def _content_matches(kind: str, head: bytes) -> bool:
    if kind == _TEXT:
        if b"\x00" in head:
            return False
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as error:
            # Only a character cut by the sniff's end is forgiven.
            return len(head) == _TEXT_SNIFF_BYTES and error.start >= len(head) - 3
        return True
    return head.startswith(_SIGNATURES[kind])


def attachment_check(upload: UploadedFile) -> CheckedAttachment:
    """The upload when it may be kept: refused with nothing written for a bad name (400
    `invalid_filename`), a type not allowed (415 `unsupported_format`), content not of its
    name's type (415 `content_mismatch`), an empty file (400 `empty_file`) or one too large
    (413 `file_too_large`)."""
    filename = sanitised_filename(upload.name or "")
    extension = PurePosixPath(filename).suffix.lower()
    kind = ALLOWED_EXTENSIONS.get(extension)
    allowed = sorted(ALLOWED_EXTENSIONS)
    if kind is None:
        raise ApplicationError(
            _("Files of this type cannot be attached. Attach one of: %(types)s.")
            % {"types": ", ".join(allowed)},
            code="unsupported_format",
            details={"supported": allowed},
            status_code=415,
        )
    size = int(upload.size or 0)
    if size <= 0:
        raise _refused(_("The file is empty."), "empty_file")
    if size > MAX_ATTACHMENT_BYTES:
        raise PayloadTooLarge(
            _("An attachment may be at most %(limit)s.")
            % {"limit": filesizeformat(MAX_ATTACHMENT_BYTES)},
            code="file_too_large",
            details={"max_bytes": MAX_ATTACHMENT_BYTES},
        )
    if not _content_matches(kind, _head(upload, _TEXT_SNIFF_BYTES)):
        raise ApplicationError(
            _("The file's content is not what its name says (%(extension)s).")
            % {"extension": extension},
            code="content_mismatch",
            details={"extension": extension},
            status_code=415,
        )
    return CheckedAttachment(upload=upload, filename=filename, extension=extension, size=size)


def attachment_storage_name(*, team_id: int, extension: str) -> str:
    return f"consulting/team-{team_id}/{uuid.uuid4().hex}/attachment{extension}"


def attachment_store(checked: CheckedAttachment, *, team_id: int) -> str:
    """Write the checked upload under a new server-chosen name; returns the name. Visible only
    once completely written (core.storage.writing)."""
    name = attachment_storage_name(team_id=team_id, extension=checked.extension)
    upload = checked.upload
    upload.seek(0)
    with storage.writing(name) as destination, open(destination, "wb") as output:
        for chunk in upload.chunks():
            output.write(chunk)
    return name


def attachment_open(name: str) -> IO[bytes]:
    return storage.open_for_reading(name)


def attachment_delete(name: str) -> None:
    """Remove a stored attachment and its folder (its own uuid folder, nothing else)."""
    if name:
        storage.delete_folder(str(PurePosixPath(name).parent))


def attachment_response(*, name: str, filename: str) -> FileResponse:
    """The stored attachment as a download (never shown inline: its type is the client's)."""
    try:
        stream = attachment_open(name)
    except FileNotFoundError:
        raise NotFound(_("The attachment is no longer stored.")) from None
    return storage.StoredFileResponse(
        stream, as_attachment=True, filename=filename, content_type="application/octet-stream"
    )
