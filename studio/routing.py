"""Websocket routes. Each app contributes its own list."""

from typing import Any

# Entries are django.urls.path()/re_path() to consumers' as_asgi().
websocket_urlpatterns: list[Any] = []
