"""WebSocket routes: include ``websocket_urlpatterns`` in your ASGI URLRouter.

    application = ProtocolTypeRouter({
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    })
"""

from django.urls import path

from perfmonitor.consumers import LiveDashboardConsumer

LIVE_PATH = "ws/perfmonitor/live/"

websocket_urlpatterns: list = [
    path(LIVE_PATH, LiveDashboardConsumer.as_asgi(), name="perfmonitor-live"),
]
