"""REST: conversations and message history, with ownership checked on every id."""

from __future__ import annotations

import pytest

from chatbot.users.services import api_key_create
from chatbot.users.tests.factories import UserFactory
from conversations.models import Conversation, Message
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory.create(username="owner")


@pytest.fixture
def api(client, owner):
    client.force_login(owner)
    return client


def make_conversation(user, title="t") -> Conversation:
    return conversation_create(owner=user, title=title)


def test_create_then_read_a_conversation(api):
    created = api.post("/api/v1/conversations", {"title": "Plans"}, content_type="application/json")
    assert created.status_code == 201
    body = created.json()
    assert (body["title"], body["model"]) == ("Plans", "offline")
    assert api.get(f"/api/v1/conversations/{body['id']}").json()["title"] == "Plans"


def test_an_unknown_model_is_a_400_with_a_code(api):
    response = api.post(
        "/api/v1/conversations", {"model": "gpt-9"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_the_list_is_newest_first_with_keyset_pagination(api, owner, django_assert_max_num_queries):
    ids = [make_conversation(owner, f"c{n}").pk for n in range(5)]
    with django_assert_max_num_queries(3):
        first = api.get("/api/v1/conversations?limit=2").json()
    second = api.get(f"/api/v1/conversations?limit=2&cursor={first['next_cursor']}").json()
    third = api.get(f"/api/v1/conversations?limit=2&cursor={second['next_cursor']}").json()
    seen = [c["id"] for page in (first, second, third) for c in page["items"]]
    assert seen == list(reversed(ids))
    assert third["next_cursor"] is None
    assert "messages" not in first["items"][0]


def test_a_forged_cursor_is_a_400_not_a_500(api, owner):
    make_conversation(owner)
    for cursor in ("!!!", "bm90LWEtY3Vyc29y", "MjAyNi0xMS0yM3x4"):
        response = api.get(f"/api/v1/conversations?cursor={cursor}")
        assert response.status_code == 400, cursor


def test_patch_renames_pins_and_archives(api, owner):
    conversation = make_conversation(owner)
    response = api.patch(
        f"/api/v1/conversations/{conversation.pk}",
        {"title": "Renamed", "pinned": True, "archived": True},
        content_type="application/json",
    )
    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.title, conversation.pinned, conversation.archived) == (
        "Renamed",
        True,
        True,
    )


def test_delete_is_soft_and_hides_the_conversation(api, owner):
    conversation = make_conversation(owner)
    assert api.delete(f"/api/v1/conversations/{conversation.pk}").status_code == 204
    conversation.refresh_from_db()
    assert conversation.deleted_at is not None
    assert api.get(f"/api/v1/conversations/{conversation.pk}").status_code == 404
    assert api.get("/api/v1/conversations").json()["items"] == []


def test_messages_page_newest_first(api, owner, django_assert_max_num_queries):
    conversation = make_conversation(owner)
    ids = [
        Message.objects.create(conversation=conversation, role="user", content=f"m{n}").pk
        for n in range(7)
    ]
    url = f"/api/v1/conversations/{conversation.pk}/messages?limit=4"
    with django_assert_max_num_queries(4):
        first = api.get(url).json()
    second = api.get(f"{url}&cursor={first['next_cursor']}").json()
    assert [m["id"] for m in first["items"] + second["items"]] == list(reversed(ids))
    assert second["next_cursor"] is None


def test_someone_elses_conversation_is_404_on_every_path(client, owner):
    victim = make_conversation(owner)
    client.force_login(UserFactory.create(username="intruder"))
    base = f"/api/v1/conversations/{victim.pk}"
    assert client.get(base).status_code == 404
    assert client.get(f"{base}/messages").status_code == 404
    assert client.patch(base, {"title": "x"}, content_type="application/json").status_code == 404
    assert client.delete(base).status_code == 404
    sent = client.post(
        f"{base}/messages",
        {"content": "hi", "idempotency_key": "k"},
        content_type="application/json",
    )
    assert sent.status_code == 404
    victim.refresh_from_db()
    assert (victim.title, victim.deleted_at) == ("t", None)
    assert not Message.objects.filter(conversation=victim).exists()


def test_anonymous_requests_are_refused(client, owner):
    assert client.get("/api/v1/conversations").status_code == 401


def test_an_api_key_works_without_a_session(client, owner):
    _, raw = api_key_create(user=owner, name="script")
    make_conversation(owner, "mine")
    response = client.get("/api/v1/conversations", headers={"Authorization": f"Bearer {raw}"})
    assert response.status_code == 200
    assert [c["title"] for c in response.json()["items"]] == ["mine"]


def test_limits_are_enforced(api, owner):
    too_many = api.get("/api/v1/conversations?limit=1000")
    assert too_many.status_code == 400
    assert too_many.json()["code"] == "invalid"
    assert "limit" in too_many.json()["detail"]
    long_title = {"title": "x" * 201}
    response = api.post("/api/v1/conversations", long_title, content_type="application/json")
    assert response.status_code == 400


def test_the_openapi_docs_are_served_without_a_cdn(client):
    page = client.get("/api/v1/docs")
    assert page.status_code == 200
    html = page.content.decode()
    assert "cdn" not in html.lower()
    assert client.get("/api/v1/openapi.json").status_code == 200
