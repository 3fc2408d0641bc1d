"""Counts every request and times it, for /metrics (ops.metrics); binds it to the platform
log's entries (RequestContextMiddleware, second).

RequestMetricsMiddleware is first in MIDDLEWARE, so it also sees what the other middleware
answer by themselves (a host that is not allowed, static files, redirects) and the time they
take.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from mlmanager.ops.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS
from mlmanager.ops.platform_log import request_bound

logger = logging.getLogger(__name__)

# Label values must come from a small fixed set, or every new value makes a new series that
# Prometheus keeps: the method a client sends is free text, the route is the URL pattern's name.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"  # no URL pattern: a 404, or answered before URL resolution
UNNAMED = "unnamed"  # a pattern without a name


class RequestMetricsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.static_prefix = settings.STATIC_URL or "/static/"
        # The counter and histogram of each label set, looked up once: `labels()` validates
        # and locks on every call, half of this middleware's cost (measured ~2 µs of ~7 µs).
        # Bounded by the labels' own bounds.
        self.children: dict[tuple[str, str, str], tuple[Any, Any]] = {}

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        response = self.get_response(request)
        try:
            method = (request.method or "") if request.method in METHODS else "other"
            route = self.route(request)
            key = (method, route, str(response.status_code))
            children = self.children.get(key)
            if children is None:
                children = HTTP_REQUESTS.labels(*key), HTTP_REQUEST_DURATION.labels(method, route)
                self.children[key] = children
            counter, histogram = children
            counter.inc()
            histogram.observe(time.perf_counter() - started)
        except Exception:  # counting must never turn an answer into an error
            logger.warning("request metrics not recorded", exc_info=True)
        return response

    def route(self, request: HttpRequest) -> str:
        match = request.resolver_match
        if match is None:
            return "static" if request.path.startswith(self.static_prefix) else UNMATCHED
        # view_name carries the namespace ("api:model-predict"); without a url name it would
        # be the view's dotted path, bounded too, but not what the label promises.
        return match.view_name if match.url_name else UNNAMED


class RequestContextMiddleware:
    """Binds each request to what is logged while answering it: the platform log's entries
    carry its id and the client's address (ops.platform_log.request_bound). The id is also
    returned as X-Request-ID, so a person reporting an error can name the entries."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        with request_bound(request) as request_id:
            response = self.get_response(request)
        response["X-Request-ID"] = request_id
        return response
