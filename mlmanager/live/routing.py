"""The WebSocket side of config.asgi: where sockets go, and who may open one."""

from __future__ import annotations

from importlib import import_module
from typing import Any
from urllib.parse import urlsplit

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import OriginValidator
from django.apps import apps
from django.conf import settings
from django.urls import URLPattern, path
from django.utils.module_loading import module_has_submodule

from mlmanager.live.consumers import JobEventsConsumer

websocket_urlpatterns = [path("ws/events/", JobEventsConsumer.as_asgi())]


def app_websocket_urlpatterns() -> list[URLPattern]:
    """This module's routes, then every other installed app's `<app>/routing.py`
    `websocket_urlpatterns`, in INSTALLED_APPS order (as config/urls.py gathers `api_urls`): an
    app adds its sockets without a line here naming it."""
    patterns = list(websocket_urlpatterns)
    for config in apps.get_app_configs():
        if not config.name.startswith("mlmanager.") or config.name == "mlmanager.live":
            continue
        if module_has_submodule(config.module, "routing"):
            module = import_module(f"{config.name}.routing")
            patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns


LOCAL_HOST_NAMES = ["localhost", "127.0.0.1", "[::1]"]
# Addresses a server binds to that mean "every interface": no page is served from them.
EVERY_INTERFACE = {"", "0.0.0.0", "::"}  # noqa: S104 - compared against, never bound


def _host_pattern(host: str) -> str:
    """A host as OriginValidator matches it: IPv6 addresses in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def allowed_origins() -> list[str]:
    """The hosts whose pages may open a socket, in every mode: the localhost names, this run's
    own address (MLMANAGER_SITE_URL's host, and HOST unless it means every interface) and the
    ALLOWED_HOSTS entries other than the wildcard `*` (a `.example.com` entry is kept: it names
    a domain the operator chose).

    Host names only, no scheme or port: a page's socket goes to another port than the page
    (MLMANAGER_LIVE_PORT), and OriginValidator compares a pattern without a port by host name.
    ALLOWED_HOSTS alone would not do: development's `*` would accept a page of any site, whose
    socket the browser opens with the user's session cookie (cookies are sent whatever the port).
    """
    hosts = [*LOCAL_HOST_NAMES]
    site_host = urlsplit(settings.MLMANAGER_SITE_URL).hostname
    if site_host:
        hosts.append(_host_pattern(site_host))
    if settings.MLMANAGER_HOST not in EVERY_INTERFACE:
        hosts.append(_host_pattern(settings.MLMANAGER_HOST))
    hosts.extend(host for host in settings.ALLOWED_HOSTS if host != "*")
    return list(dict.fromkeys(host.lower() for host in hosts))


def websocket_application() -> Any:
    """The socket app: a handshake whose Origin is not one of allowed_origins() is refused
    (403), as is one without an Origin. The settings are read when this is called: call it once
    they are final. The user comes from the session cookie."""
    return OriginValidator(
        AuthMiddlewareStack(URLRouter(app_websocket_urlpatterns())), allowed_origins()
    )
