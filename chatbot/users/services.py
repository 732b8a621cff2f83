"""Writes for users: issuing, revoking and recording the use of API keys."""

import secrets
from datetime import timedelta

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from chatbot.users.models import (
    API_KEY_DISPLAY_LENGTH,
    API_KEY_PREFIX,
    ApiKey,
    User,
    api_key_digest,
)

# last_used_at is for humans ("is this key still in use?"); minute precision spares a write
# on every authenticated request.
API_KEY_LAST_USED_RESOLUTION = timedelta(minutes=1)


@transaction.atomic
def api_key_create(*, user: User, name: str) -> tuple[ApiKey, str]:
    """Issue a new key for `user`; returns the key and the raw key, which is not stored anywhere.

    The caller must show the raw key to its owner now: only its digest is kept.
    """
    raw_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        prefix=raw_key[:API_KEY_DISPLAY_LENGTH],
        hashed_key=api_key_digest(raw_key),
    )
    return api_key, raw_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> None:
    """Refuse the key from now on; revoking a revoked key keeps its first revocation time."""
    now = timezone.now()
    if ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=now):
        api_key.revoked_at = now
    else:
        api_key.refresh_from_db(fields=["revoked_at"])


def api_key_record_use(*, api_key: ApiKey) -> None:
    """Stamp last_used_at, at most once per API_KEY_LAST_USED_RESOLUTION.

    The in-memory value skips the query for a recently used key; the conditional UPDATE keeps
    concurrent requests from rewriting the stamp more than once a minute either.
    """
    now = timezone.now()
    stale_before = now - API_KEY_LAST_USED_RESOLUTION
    if api_key.last_used_at is not None and api_key.last_used_at > stale_before:
        return
    ApiKey.objects.filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lte=stale_before), pk=api_key.pk
    ).update(last_used_at=now)
    api_key.last_used_at = now


@transaction.atomic
def demo_user_create(*, username: str, password: str) -> User | None:
    """A staff superuser for the demo, or None when one with that name exists already."""
    if User.objects.filter(username=username).exists():
        return None
    return User.objects.create_superuser(
        username=username, email="", password=password, display_name="Demo"
    )
