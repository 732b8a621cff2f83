"""Reads for users: who a client is, from an API key or a username."""

from chatbot.users.models import API_KEY_PREFIX, ApiKey, User, api_key_digest
from chatbot.users.services import api_key_record_use


def api_key_authenticate(*, raw_key: str) -> User | None:
    """The active owner of a live (unrevoked) key, or None; records the key's use.

    Timing-safe without a constant-time compare: the database is searched by the key's SHA-256,
    so how long a lookup takes can only leak digest bits, which say nothing about other keys.
    """
    if not raw_key.startswith(API_KEY_PREFIX):
        return None
    try:
        api_key = ApiKey.objects.select_related("user").get(
            hashed_key=api_key_digest(raw_key), revoked_at__isnull=True, user__is_active=True
        )
    except ApiKey.DoesNotExist:
        return None
    api_key_record_use(api_key=api_key)
    return api_key.user


def user_get_by_username(*, username: str) -> User | None:
    """The user with exactly this username, or None."""
    return User.objects.filter(username=username).first()
