from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest

# How often a live partial re-fetches itself while its page has no socket (the live server is
# down or unreachable) and something runs; with a socket it waits for events instead.
FALLBACK_POLL = "5s"


def live(request: HttpRequest) -> dict[str, Any]:
    """Where the layout's script opens its socket: MLMANAGER_LIVE_URL, else this host on
    MLMANAGER_LIVE_PORT (ws or wss as the page); and how often, while it has no socket, it
    fires `mlmanager:poll` for the partials' fallback poll (all on <body>, read by live.js)."""
    if not request.user.is_authenticated:
        return {}
    return {
        "live_url": settings.MLMANAGER_LIVE_URL,
        "live_port": settings.MLMANAGER_LIVE_PORT,
        "live_fallback_poll": FALLBACK_POLL,
    }
