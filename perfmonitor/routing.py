"""WebSocket routes: include ``websocket_urlpatterns`` in your ASGI URLRouter."""

from django.urls import path

websocket_urlpatterns: list = []
