import hashlib

from chatbot.users.models import ApiKey
from chatbot.users.selectors import api_key_authenticate
from chatbot.users.services import api_key_create, api_key_revoke


def test_a_created_key_authenticates_its_user(user, issued_key):
    _, raw_key = issued_key
    assert api_key_authenticate(raw_key=raw_key) == user


def test_a_created_key_is_a_prefixed_high_entropy_token(issued_key):
    api_key, raw_key = issued_key
    assert raw_key.startswith("cb_")
    assert len(raw_key) == len("cb_") + 43  # token_urlsafe(32): 32 random bytes
    assert api_key.prefix == raw_key[:8]


def test_only_the_sha256_of_the_key_is_stored(issued_key):
    api_key, raw_key = issued_key
    row = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert row["hashed_key"] == hashlib.sha256(raw_key.encode()).hexdigest()
    assert all(raw_key not in str(value) for value in row.values())


def test_two_keys_for_the_same_user_differ(user, issued_key):
    _, second_raw_key = api_key_create(user=user, name="second")
    assert second_raw_key != issued_key[1]
    assert ApiKey.objects.filter(user=user).count() == 2


def test_revoking_stamps_the_key_and_keeps_the_first_revocation_time(issued_key):
    api_key, _ = issued_key
    api_key_revoke(api_key=api_key)
    first_revocation = ApiKey.objects.get(pk=api_key.pk).revoked_at
    assert first_revocation is not None
    api_key_revoke(api_key=ApiKey.objects.get(pk=api_key.pk))
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at == first_revocation


def test_revoking_a_stale_instance_of_a_revoked_key_loads_the_stored_time(issued_key):
    api_key, _ = issued_key
    stale_copy = ApiKey.objects.get(pk=api_key.pk)
    api_key_revoke(api_key=api_key)
    api_key_revoke(api_key=stale_copy)
    assert stale_copy.revoked_at == api_key.revoked_at
