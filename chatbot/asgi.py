"""ASGI entry point: HTTP goes to Django, websockets to Channels.

Websockets authenticate by session or by API key; the Origin is checked unless an API-key client
sends none (see chatbot.users.channels_auth).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402  (needs Django set up first)
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chatbot.routing import websocket_urlpatterns  # noqa: E402
from chatbot.users.channels_auth import (  # noqa: E402
    AllowedHostsOrBearerOriginValidator,
    ApiKeyAuthMiddleware,
)

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOrBearerOriginValidator(
            AuthMiddlewareStack(ApiKeyAuthMiddleware(URLRouter(websocket_urlpatterns)))
        ),
    }
)
