"""ASGI entry point: HTTP goes to Django, websockets to Channels.

Websockets authenticate by session or by API key; the Origin is checked unless an API-key client
sends none (see chatbot.users.channels_auth).
"""

import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")
django_asgi_app = get_asgi_application()

# Streaming allocates many short-lived objects: collecting the youngest generation every 700
# allocations cost about 15% of the web process's CPU under load (bench/README.md). Collect
# less often, and keep everything loaded at start-up out of the collector's scans.
gc.set_threshold(50_000, 50, 100)
gc.freeze()

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
