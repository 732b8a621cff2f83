"""Websocket authentication by API key, and the Origin check that lets such clients in."""

from collections.abc import Awaitable, Callable
from typing import Any

from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser

from chatbot.users.models import API_KEY_PREFIX
from chatbot.users.selectors import api_key_authenticate

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def scope_header(scope: Scope, name: bytes) -> bytes | None:
    """The value of the first header called `name` (lower case, as ASGI gives them)."""
    return next((value for key, value in scope.get("headers", []) if key == name), None)


def scope_bearer_token(scope: Scope) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None without one."""
    header = scope_header(scope, b"authorization")
    if header is None:
        return None
    scheme, _, token = header.decode("latin1").partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


class ApiKeyAuthMiddleware(BaseMiddleware):  # type: ignore[misc]  # channels is untyped
    """Sets scope["user"] from a bearer API key; without the header the session user stays.

    Goes inside AuthMiddlewareStack so it runs after the session lookup. A connection that
    presents a key is judged by that key alone: a wrong or revoked key means AnonymousUser,
    never a fallback to whatever session cookie came along.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = scope_bearer_token(scope)
        if token is not None:
            user = await database_sync_to_async(api_key_authenticate)(raw_key=token)
            scope = {**scope, "user": user or AnonymousUser()}
        await super().__call__(scope, receive, send)


class AllowedHostsOrBearerOriginValidator:
    """Channels' AllowedHostsOriginValidator, except it admits API-key clients that send no Origin.

    Channels refuses a handshake without an Origin header, yet scripts and native clients
    usually send none. The Origin check exists against cross-site websocket hijacking: a page on
    another site opening a socket that the browser authenticates with the victim's cookies.
    That cannot happen here: browsers always send Origin on websocket handshakes and cannot set
    an Authorization header on one, and a connection carrying a bearer key is authenticated by
    the key only (ApiKeyAuthMiddleware ignores the session then), so the cookies that make
    hijacking possible play no part. Every handshake with an Origin is still checked.
    """

    def __init__(self, application: ASGIApp) -> None:
        self.application = application
        self.browser_validator: ASGIApp = AllowedHostsOriginValidator(application)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope_header(scope, b"origin") is None and self.has_api_key(scope):
            await self.application(scope, receive, send)
        else:
            await self.browser_validator(scope, receive, send)

    @staticmethod
    def has_api_key(scope: Scope) -> bool:
        token = scope_bearer_token(scope)
        return token is not None and token.startswith(API_KEY_PREFIX)
