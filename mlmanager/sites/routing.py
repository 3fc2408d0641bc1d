"""The sites' sockets, gathered by mlmanager.live.routing."""

from django.urls import path

from mlmanager.sites.consumers import SiteDashboardConsumer

websocket_urlpatterns = [
    path("ws/sites/<int:site_id>/", SiteDashboardConsumer.as_asgi()),
]
