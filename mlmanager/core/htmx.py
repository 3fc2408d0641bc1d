"""Helpers for pages that answer htmx requests with partials."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def render_page_or_partial(
    request: HttpRequest, *, page: str, partial: str, context: dict[str, Any]
) -> HttpResponse:
    """Full page for a normal request; just the partial when htmx asks (polling, swaps)."""
    template = partial if getattr(request, "htmx", False) else page
    return render(request, template, context)
