"""Websocket URL patterns of every app, collected for the ASGI router."""

from conversations.routing import websocket_urlpatterns as conversation_patterns
from knowledge.routing import websocket_urlpatterns as knowledge_patterns

websocket_urlpatterns = [*conversation_patterns, *knowledge_patterns]
