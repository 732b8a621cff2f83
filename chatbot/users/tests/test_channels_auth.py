import pytest
import pytest_asyncio
from asgiref.sync import sync_to_async
from channels.auth import AuthMiddlewareStack
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.db import connections
from django.test import Client
from django.urls import path

from chatbot.users.channels_auth import AllowedHostsOrBearerOriginValidator, ApiKeyAuthMiddleware
from chatbot.users.services import api_key_create
from chatbot.users.tests.factories import UserFactory


class WhoAmIConsumer(AsyncJsonWebsocketConsumer):  # type: ignore[misc]  # channels is untyped
    """Accepts everyone and reports the user it was given."""

    async def connect(self):
        await self.accept()
        user = self.scope["user"]
        await self.send_json({"authenticated": user.is_authenticated, "username": user.username})


# The same stack as chatbot.asgi, around a test route.
application = AllowedHostsOrBearerOriginValidator(
    AuthMiddlewareStack(
        ApiKeyAuthMiddleware(URLRouter([path("ws/whoami/", WhoAmIConsumer.as_asgi())]))
    )
)

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]


@pytest_asyncio.fixture(autouse=True)
async def close_connections_of_the_sync_thread():
    """The ORM ran in asgiref's worker thread, whose connection (CONN_MAX_AGE) would outlive the
    test and block dropping the test database."""
    yield
    await sync_to_async(connections.close_all)()


@sync_to_async
def user_with_key(username: str = "ada") -> str:
    user = UserFactory.create(username=username)
    return api_key_create(user=user, name="websocket client")[1]


@sync_to_async
def session_cookie_of(username: str) -> bytes:
    client = Client()
    client.force_login(UserFactory.create(username=username))
    name = settings.SESSION_COOKIE_NAME
    return f"{name}={client.cookies[name].value}".encode()


async def handshake(headers: list[tuple[bytes, bytes]]) -> dict[str, object] | None:
    """What the consumer reported, or None when the handshake was refused."""
    communicator = WebsocketCommunicator(application, "/ws/whoami/", headers=headers)
    connected, _ = await communicator.connect()
    if not connected:
        return None
    seen: dict[str, object] = await communicator.receive_json_from()
    await communicator.disconnect()
    return seen


async def test_a_bearer_key_without_origin_connects_as_its_user():
    raw_key = await user_with_key("ada")
    seen = await handshake([(b"authorization", f"Bearer {raw_key}".encode())])
    assert seen == {"authenticated": True, "username": "ada"}


async def test_a_wrong_bearer_key_leaves_the_connection_anonymous():
    await user_with_key("ada")
    seen = await handshake([(b"authorization", b"Bearer cb_wrong")])
    assert seen == {"authenticated": False, "username": ""}


async def test_a_wrong_bearer_key_does_not_fall_back_to_the_session_cookie():
    cookie = await session_cookie_of("grace")
    headers = [(b"origin", b"http://testserver"), (b"cookie", cookie)]
    seen = await handshake([*headers, (b"authorization", b"Bearer cb_wrong")])
    assert seen == {"authenticated": False, "username": ""}


async def test_a_browser_session_from_an_allowed_origin_keeps_its_user():
    cookie = await session_cookie_of("grace")
    seen = await handshake([(b"origin", b"http://testserver"), (b"cookie", cookie)])
    assert seen == {"authenticated": True, "username": "grace"}


async def test_a_browser_connection_from_a_foreign_origin_is_refused():
    cookie = await session_cookie_of("grace")
    assert await handshake([(b"origin", b"https://evil.example"), (b"cookie", cookie)]) is None


async def test_a_foreign_origin_is_refused_even_with_a_valid_bearer_key():
    raw_key = await user_with_key("ada")
    headers = [(b"origin", b"https://evil.example")]
    assert await handshake([*headers, (b"authorization", f"Bearer {raw_key}".encode())]) is None


async def test_a_connection_with_neither_origin_nor_api_key_is_refused():
    cookie = await session_cookie_of("grace")
    assert await handshake([(b"cookie", cookie)]) is None
    assert await handshake([(b"authorization", b"Bearer something-else")]) is None
