"""Pages map ApplicationError once, here: a message the user understands, never a 500."""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from mlmanager.core.errors import ApplicationError


class ApplicationErrorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, ApplicationError) or request.path.startswith("/api/"):
            return None
        template = "core/partials/_error.html" if request.htmx else "core/error.html"  # type: ignore[attr-defined]
        response = render(request, template, {"error": exception}, status=exception.status_code)
        if exception.retry_after_s is not None:
            response["Retry-After"] = str(exception.retry_after_s)
        return response
