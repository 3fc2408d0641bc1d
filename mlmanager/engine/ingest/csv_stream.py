"""The input stream pyarrow reads CSV from: re-encoded to UTF-8, with read-ahead held back."""

from __future__ import annotations

import codecs
import io
import logging
import threading

logger = logging.getLogger(__name__)

# Text decoded per read when re-encoding CSV for pyarrow.
STREAM_CHUNK_BYTES = 1 << 20
# Should pyarrow ever wait for input the throttle holds back, stop throttling rather than stall.
CSV_THROTTLE_TIMEOUT_SECONDS = 5.0


class Utf8Reader(io.RawIOBase):
    """Re-encodes a text file to UTF-8 on the fly for pyarrow, dropping NUL characters.

    pyarrow's own transcoding stops at the first undecodable byte; decoding here with
    errors="replace" means one stray byte cannot reject a whole file. The reader also counts
    the bytes read, for progress, and holds pyarrow's background reading to `allow_until`
    bytes of output so that read-ahead cannot fill memory.
    """

    def __init__(self, raw: io.BufferedReader, encoding: str, *, allow_until: int | None):
        self._raw = raw
        self._decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        self._buffer = b""
        self._position = 0
        self._end_of_file = False
        self._delivered = 0
        self._allow_until = allow_until
        self._throttle = threading.Condition()
        self.bytes_read = 0
        self.removed_nul = False
        self.replaced_characters = False

    def buffered(self) -> io.BufferedReader:
        """This stream behind a buffer of one chunk, which is how pyarrow should read it."""
        return io.BufferedReader(self, buffer_size=STREAM_CHUNK_BYTES)

    def readable(self) -> bool:
        return True

    def allow(self, until: int | None) -> None:
        """Let the consumer read up to `until` bytes of output in total (None: no limit)."""
        with self._throttle:
            self._allow_until = until
            self._throttle.notify_all()

    def readinto(self, target) -> int:  # type: ignore[no-untyped-def]
        self._wait_for_allowance()
        while self._position >= len(self._buffer):
            if self._end_of_file:
                return 0
            self._fill()
        count = min(len(target), len(self._buffer) - self._position)
        target[:count] = self._buffer[self._position : self._position + count]
        self._position += count
        self._delivered += count
        return count

    def _wait_for_allowance(self) -> None:
        with self._throttle:
            allowed = self._throttle.wait_for(
                lambda: self._allow_until is None or self._delivered < self._allow_until,
                timeout=CSV_THROTTLE_TIMEOUT_SECONDS,
            )
            if not allowed:
                logger.warning(
                    "csv reader stalled at %s bytes; reading on unthrottled", self._delivered
                )
                self._allow_until = None

    def _fill(self) -> None:
        raw = self._raw.read(STREAM_CHUNK_BYTES)
        self.bytes_read += len(raw)
        if raw:
            text = self._decoder.decode(raw)
        else:
            text = self._decoder.decode(b"", final=True)
            self._end_of_file = True
        if "\x00" in text:
            text = text.replace("\x00", "")
            self.removed_nul = True
        if "\ufffd" in text:
            self.replaced_characters = True
        self._buffer = text.encode("utf-8")
        self._position = 0
