"""The list pages' pager (core.pagination.page_of): one page size setting, long lists twice
as long, forgiving page numbers, and links that keep the list's filters."""

from __future__ import annotations

import pytest
from django.test import RequestFactory, override_settings

from mlmanager.core.pagination import page_of

ROWS = list(range(1, 12))


@override_settings(MLMANAGER_PAGE_SIZE=4)
@pytest.mark.parametrize(
    ("query", "long_list", "number", "rows"),
    [
        ("", False, 1, [1, 2, 3, 4]),
        ("page=2", False, 2, [5, 6, 7, 8]),
        ("page=99", False, 3, [9, 10, 11]),  # past the end: the last page
        ("page=x", False, 1, [1, 2, 3, 4]),  # not a number: the first
        ("page=2", True, 2, [9, 10, 11]),  # a long list: 8 rows a page
    ],
)
def test_page_size_comes_from_the_setting(
    query: str, long_list: bool, number: int, rows: list[int]
) -> None:
    page = page_of(RequestFactory().get(f"/jobs/?{query}"), ROWS, long_list=long_list)
    assert (page.number, list(page)) == (number, rows)


def test_the_links_keep_every_parameter_but_the_page() -> None:
    request = RequestFactory().get("/predictions/?source=ui&page=2&version=3")
    assert page_of(request, ROWS).query == "source=ui&version=3"
    assert page_of(RequestFactory().get("/jobs/?page=2"), ROWS).query == ""
