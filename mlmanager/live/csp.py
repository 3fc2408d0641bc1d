"""The Content-Security-Policy's one source that depends on the request: the live socket.

Pages open their socket on the live server (mlmanager/live), another port than the page's, so
`connect-src 'self'` does not cover it. It is MLMANAGER_LIVE_URL when set, else the host the
page was asked for on MLMANAGER_LIVE_PORT (what core/live.js connects to): only the request
knows that host, so the source is added per response to the policy of the settings.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponseBase
from django.http.request import split_domain_port


def live_socket_source(request: HttpRequest) -> str:
    """The socket's origin (scheme, host and port: the path is left out, a source with a path
    would match that path only), ws: or wss: as the page's scheme."""
    if settings.MLMANAGER_LIVE_URL:
        parts = urlsplit(settings.MLMANAGER_LIVE_URL)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}"
    scheme = "wss" if request.is_secure() else "ws"
    host, _port = split_domain_port(request.get_host())  # an IPv6 address keeps its brackets
    return f"{scheme}://{host}:{settings.MLMANAGER_LIVE_PORT}"


class LiveSocketCSPMiddleware(CSPMiddleware):
    """django-csp's middleware, adding the live socket to connect-src."""

    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        try:
            socket_source = live_socket_source(request)
        except DisallowedHost:  # answered 400 already; the page opens no socket
            return parts
        update: dict[str, Any] = dict(parts.update or {})
        earlier = update.get("connect-src") or []
        update["connect-src"] = [
            *([earlier] if isinstance(earlier, str) else earlier),
            socket_source,
        ]
        parts.update = update
        return parts
