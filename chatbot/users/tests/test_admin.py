import re

from django.urls import reverse

from chatbot.users.models import ApiKey
from chatbot.users.selectors import api_key_authenticate

RAW_KEY = re.compile(r"cb_[\w-]{43}")


def test_adding_a_key_in_the_admin_shows_the_raw_key_once(admin_client, user):
    response = admin_client.post(
        reverse("admin:users_apikey_add"), {"user": user.pk, "name": "from admin"}, follow=True
    )
    assert response.status_code == 200
    shown = RAW_KEY.findall(response.content.decode())
    assert len(set(shown)) == 1, shown
    assert api_key_authenticate(raw_key=shown[0]) == user
    assert ApiKey.objects.get(user=user).name == "from admin"

    again = admin_client.get(reverse("admin:users_apikey_changelist"))
    assert not RAW_KEY.search(again.content.decode())


def test_the_add_form_asks_only_for_user_and_name(admin_client):
    response = admin_client.get(reverse("admin:users_apikey_add"))
    assert response.status_code == 200
    form_fields = set(response.context["adminform"].form.fields)
    assert form_fields == {"user", "name"}


def test_the_changelist_lists_keys_without_their_digest(admin_client, issued_key):
    api_key, _ = issued_key
    response = admin_client.get(reverse("admin:users_apikey_changelist"))
    content = response.content.decode()
    assert response.status_code == 200
    assert "laptop script" in content
    assert api_key.prefix in content
    assert api_key.hashed_key not in content


def test_the_change_page_shows_no_digest_and_only_the_name_is_editable(admin_client, issued_key):
    api_key, _ = issued_key
    response = admin_client.get(reverse("admin:users_apikey_change", args=[api_key.pk]))
    assert response.status_code == 200
    assert api_key.hashed_key not in response.content.decode()
    assert set(response.context["adminform"].form.fields) == {"name"}


def test_the_revoke_action_revokes_the_selected_keys(admin_client, issued_key):
    api_key, raw_key = issued_key
    response = admin_client.post(
        reverse("admin:users_apikey_changelist"),
        {"action": "revoke_selected", "_selected_action": [api_key.pk]},
        follow=True,
    )
    assert "Revoked 1 key(s)." in response.content.decode()
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert api_key_authenticate(raw_key=raw_key) is None
