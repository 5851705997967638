"""Websocket routes. Each app contributes its own list."""

from typing import Any

from chat.routing import websocket_urlpatterns as chat_websockets

websocket_urlpatterns: list[Any] = [*chat_websockets]
