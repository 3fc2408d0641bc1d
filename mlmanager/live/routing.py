"""The WebSocket side of config.asgi: where sockets go, and who may open one."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from mlmanager.live.consumers import JobEventsConsumer

websocket_urlpatterns = [path("ws/events/", JobEventsConsumer.as_asgi())]


def websocket_application() -> Any:
    """The socket app: its Origin must be one of ALLOWED_HOSTS, else the handshake is refused.

    A page's sockets go to another port (MLMANAGER_LIVE_PORT) of the same host; the validator
    compares host names only when ALLOWED_HOSTS gives no port, so such an origin is accepted and
    another site's is not. Without the check any site the user visits could open a socket with
    the user's session cookie (cookies are sent whatever the port). ALLOWED_HOSTS is read when
    this is called: call it once settings are final. The user comes from the session cookie.
    """
    return AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))
