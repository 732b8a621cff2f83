"""Folders and the organisation endpoints (rename, pin, archive, move) over REST."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from chatbot.users.tests.factories import UserFactory
from conversations.exceptions import InvalidInput
from conversations.folders import folder_create, folder_list
from conversations.models import Conversation

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> Any:
    return UserFactory.create(username="alice")


def logged_in(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_folder_names_are_unique_per_user_but_not_across_users(alice: Any) -> None:
    folder_create(user=alice, name="Work")
    with pytest.raises(InvalidInput):
        folder_create(user=alice, name="Work")
    folder_create(user=UserFactory.create(username="bob"), name="Work")
    assert [f.name for f in folder_list(user=alice)] == ["Work"]


def test_moving_into_a_folder_and_deleting_the_folder_unfiles(alice: Any) -> None:
    client = logged_in(alice)
    conversation = Conversation.objects.create(owner=alice, title="t", model="m1")
    folder = client.post("/api/v1/folders", {"name": "Tax"}, content_type="application/json")
    folder_id = folder.json()["id"]
    moved = client.put(
        f"/api/v1/conversations/{conversation.pk}/folder",
        {"folder_id": folder_id},
        content_type="application/json",
    )
    assert moved.json()["folder_id"] == folder_id
    assert client.delete(f"/api/v1/folders/{folder_id}").status_code == 204
    conversation.refresh_from_db()
    assert conversation.folder_id is None


def test_nobody_files_into_someone_elses_folder(alice: Any) -> None:
    theirs = folder_create(user=UserFactory.create(username="bob"), name="Bob")
    conversation = Conversation.objects.create(owner=alice, title="t", model="m1")
    response = logged_in(alice).put(
        f"/api/v1/conversations/{conversation.pk}/folder",
        {"folder_id": theirs.pk},
        content_type="application/json",
    )
    assert response.status_code == 404


def test_rename_pin_and_archive_go_through_the_same_patch(alice: Any) -> None:
    conversation = Conversation.objects.create(owner=alice, title="t", model="m1")
    body = (
        logged_in(alice)
        .patch(
            f"/api/v1/conversations/{conversation.pk}",
            {"title": "Renamed", "pinned": True, "archived": True},
            content_type="application/json",
        )
        .json()
    )
    assert (body["title"], body["pinned"], body["archived"]) == ("Renamed", True, True)


def test_the_conversation_list_makes_a_fixed_number_of_queries(
    alice: Any, django_assert_max_num_queries: Any
) -> None:
    for n in range(40):
        Conversation.objects.create(owner=alice, title=f"c{n}", model="m1")
    client = logged_in(alice)
    with django_assert_max_num_queries(3):  # session, user, the page
        body = client.get("/api/v1/conversations?limit=30").json()
    assert len(body["items"]) == 30


def test_the_pages_render_the_search_box_and_your_data(alice: Any) -> None:
    client = logged_in(alice)
    chat = client.get("/").content.decode()
    assert 'data-testid="search-input"' in chat and "chat_history.js" in chat
    data = client.get("/history/")
    assert data.status_code == 200 and b"Delete my account" in data.content
    assert Client().get("/history/").status_code == 302
