"""The ASGI application of `mlmanager live` (uvicorn, one process): the WebSockets of the live
updates (mlmanager.live). Pages and the API are served by gunicorn (config.wsgi); `http` is
routed to Django here too, so the process answers plain requests sensibly."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
# First: it sets Django up, which the consumers' imports (models) need.
django_application = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from mlmanager.live.routing import websocket_application  # noqa: E402

application = ProtocolTypeRouter({"http": django_application, "websocket": websocket_application()})
