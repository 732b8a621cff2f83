from datetime import timedelta

from django.utils import timezone

from chatbot.users.models import ApiKey
from chatbot.users.selectors import api_key_authenticate, user_get_by_username
from chatbot.users.services import api_key_revoke


def test_a_revoked_key_is_refused(issued_key):
    api_key, raw_key = issued_key
    api_key_revoke(api_key=api_key)
    assert api_key_authenticate(raw_key=raw_key) is None


def test_the_key_of_an_inactive_user_is_refused(user, issued_key):
    user.is_active = False
    user.save(update_fields=["is_active"])
    assert api_key_authenticate(raw_key=issued_key[1]) is None


def test_a_wrong_key_is_refused(issued_key):
    _, raw_key = issued_key
    assert api_key_authenticate(raw_key=raw_key[:-1] + ("A" if raw_key[-1] != "A" else "B")) is None
    assert api_key_authenticate(raw_key="cb_") is None
    assert api_key_authenticate(raw_key="") is None


def test_the_stored_digest_itself_is_not_a_key(issued_key):
    api_key, _ = issued_key
    assert api_key_authenticate(raw_key=api_key.hashed_key) is None
    assert api_key_authenticate(raw_key="cb_" + api_key.hashed_key) is None


def test_a_first_use_records_last_used_at(issued_key):
    api_key, raw_key = issued_key
    before = timezone.now()
    api_key_authenticate(raw_key=raw_key)
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None
    assert api_key.last_used_at >= before


def test_uses_within_a_minute_do_not_write(issued_key, django_assert_num_queries):
    api_key, raw_key = issued_key
    api_key_authenticate(raw_key=raw_key)
    first_use = ApiKey.objects.get(pk=api_key.pk).last_used_at
    with django_assert_num_queries(1):  # the lookup only, no UPDATE
        api_key_authenticate(raw_key=raw_key)
    assert ApiKey.objects.get(pk=api_key.pk).last_used_at == first_use


def test_a_use_after_a_minute_records_last_used_at_again(issued_key):
    api_key, raw_key = issued_key
    long_ago = timezone.now() - timedelta(minutes=5)
    ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=long_ago)
    api_key_authenticate(raw_key=raw_key)
    last_used_at = ApiKey.objects.get(pk=api_key.pk).last_used_at
    assert last_used_at is not None
    assert last_used_at > long_ago


def test_user_get_by_username_finds_exact_names_only(user):
    assert user_get_by_username(username="ada") == user
    assert user_get_by_username(username="ADA") is None
