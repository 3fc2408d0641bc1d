"""Helpers for pages that answer htmx requests with partials."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page_or_partial(
    request: HttpRequest, *, page: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """Full page for a normal request; just the partial when htmx asks (polling, swaps). A
    boosted request (a form htmx submits in the browser's place, e.g. to confirm a deletion
    first, following the redirect) gets the full page: htmx swaps the whole body."""
    htmx = getattr(request, "htmx", None)
    template = partial if htmx and not htmx.boosted else page
    return render(request, template, context)
