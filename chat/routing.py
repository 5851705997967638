from typing import Any

from django.urls import path

from chat.consumers import ConversationConsumer

# django.urls.path() is typed for views; Channels' URLRouter takes ASGI apps the same way.
consumer: Any = ConversationConsumer.as_asgi()

websocket_urlpatterns = [path("ws/chat/<uuid:conversation_id>/", consumer)]
