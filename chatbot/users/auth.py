"""django-ninja authentication: bearer API keys for programs, the session for the browser."""

from django.http import HttpRequest
from ninja.security import HttpBearer, django_auth
from ninja.security.base import AuthBase

from chatbot.users.models import User
from chatbot.users.selectors import api_key_authenticate


class ApiKeyAuth(HttpBearer):
    """`Authorization: Bearer cb_...`; the key's user becomes request.auth and request.user.

    Ninja runs sync auth callbacks in a thread for async views, so the ORM is safe here. No CSRF
    check is needed: a browser never attaches this header on its own, unlike a cookie.
    """

    def authenticate(self, request: HttpRequest, token: str) -> User | None:
        user = api_key_authenticate(raw_key=token)
        if user is not None:
            # So code written against the session (request.user) sees the key's owner too.
            request.user = user
        return user


# `auth=api_auth` on a router or route: a bearer key first, else the session (CSRF-checked).
api_auth: list[AuthBase] = [ApiKeyAuth(), django_auth]
