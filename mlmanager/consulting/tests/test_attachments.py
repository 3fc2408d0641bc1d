"""Attachment names as shown: the last path part, showable characters only, or refused."""

from __future__ import annotations

import pytest

from mlmanager.consulting.attachments import MAX_FILENAME_LENGTH, sanitised_filename
from mlmanager.core.errors import ApplicationError


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\ana\\Données 2026.csv", "Données 2026.csv"),
        ("<b>alert(1)</b>.txt", "b_.txt"),
        ("a<b>c?.txt", "a_b_c_.txt"),
        (".hidden.png", "hidden.png"),
        ("a" * 300 + ".pdf", "a" * (MAX_FILENAME_LENGTH - 4) + ".pdf"),
    ],
)
def test_names_are_sanitised(raw: str, shown: str) -> None:
    assert sanitised_filename(raw) == shown


@pytest.mark.parametrize("raw", ["", "....", "###.pdf", "bad\x00name.txt", "two\nlines.txt", "/"])
def test_names_with_nothing_to_show_or_control_characters_are_refused(raw: str) -> None:
    with pytest.raises(ApplicationError) as refused:
        sanitised_filename(raw)
    assert refused.value.code == "invalid_filename"
    assert refused.value.status_code == 400
