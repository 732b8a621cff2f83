"""Soft delete, trash, restore, purge after the retention, and deleting an account."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.db import models
from django.test import Client
from django.utils import timezone

from billing.models import UsageRecord
from chatbot.users.models import ApiKey
from chatbot.users.services import api_key_create
from chatbot.users.tests.factories import UserFactory
from conversations.exceptions import NotFound
from conversations.exports import export_build, export_path, export_start
from conversations.folders import conversation_move, folder_create
from conversations.models import Conversation, Export, Message, ShareLink, UserSession
from conversations.retention import (
    account_delete,
    conversation_restore,
    conversations_purge,
    trash_list,
)
from conversations.services import conversation_delete
from conversations.shares import share_create
from conversations.tasks import conversations_purge_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice() -> Any:
    return UserFactory.create(username="alice", email="alice@example.com")


def chat(owner: Any, title: str = "t") -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title=title, model="m1")
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    Message.objects.create(
        conversation=conversation, role="assistant", content="a", reply_to=question
    )
    return conversation


def deleted_days_ago(conversation: Conversation, days: float) -> None:
    when = timezone.now() - timedelta(days=days)
    Conversation.objects.filter(pk=conversation.pk).update(deleted_at=when)


def test_a_deleted_conversation_is_in_the_trash_and_can_be_restored(alice: Any) -> None:
    conversation = chat(alice)
    conversation_delete(conversation=conversation)
    assert [c.pk for c in trash_list(user=alice).items] == [conversation.pk]
    restored = conversation_restore(user=alice, conversation_id=conversation.pk)
    assert restored.deleted_at is None
    assert trash_list(user=alice).items == []


def test_nobody_else_can_restore_and_past_retention_nobody_can(alice: Any) -> None:
    conversation = chat(alice)
    deleted_days_ago(conversation, 1)
    with pytest.raises(NotFound):
        conversation_restore(user=UserFactory.create(username="m"), conversation_id=conversation.pk)
    deleted_days_ago(conversation, 31)
    with pytest.raises(NotFound):
        conversation_restore(user=alice, conversation_id=conversation.pk)


def test_the_purge_removes_old_trash_with_messages_and_shares_and_keeps_the_rest(
    alice: Any,
) -> None:
    old, recent, live = chat(alice, "old"), chat(alice, "recent"), chat(alice, "live")
    share_create(conversation=old)
    record = UsageRecord.objects.create(
        user=alice, conversation=old, message=old.messages.first(), model="m1"
    )
    deleted_days_ago(old, 31)
    deleted_days_ago(recent, 29)
    assert conversations_purge_task() == 1  # the beat task's body
    assert not Conversation.objects.filter(pk=old.pk).exists()
    assert not Message.objects.filter(conversation_id=old.pk).exists()
    assert not ShareLink.objects.filter(conversation_id=old.pk).exists()
    assert set(Conversation.objects.values_list("pk", flat=True)) == {recent.pk, live.pk}
    record.refresh_from_db()  # the ledger row stays, unlinked
    assert record.conversation_id is None and record.message_id is None


def test_the_purge_works_in_batches(alice: Any, monkeypatch: Any) -> None:
    monkeypatch.setattr("conversations.retention.PURGE_BATCH", 2)
    for _ in range(5):
        deleted_days_ago(chat(alice), 40)
    assert conversations_purge() == 5
    assert not Conversation.objects.exists()


def test_trash_and_restore_through_the_api(alice: Any, django_assert_max_num_queries: Any) -> None:
    conversations = [chat(alice, f"c{n}") for n in range(3)]
    for conversation in conversations:
        conversation_delete(conversation=conversation)
    client = Client()
    client.force_login(alice)
    with django_assert_max_num_queries(3):
        page = client.get("/api/v1/trash?limit=2").json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    response = client.post(f"/api/v1/conversations/{conversations[0].pk}/restore")
    assert response.status_code == 200
    assert client.get(f"/api/v1/conversations/{conversations[0].pk}").status_code == 200


def rows_referencing(user_id: int) -> dict[str, int]:
    """Every row of every table with a foreign key to the user that still names them."""
    counts = {}
    user_model = apps.get_model("users", "User")
    for model in apps.get_models():
        for field in model._meta.get_fields():
            if isinstance(field, models.ForeignKey) and field.related_model is user_model:
                count = model._base_manager.filter(**{field.attname: user_id}).count()
                if count:
                    counts[f"{model._meta.label}.{field.name}"] = count
    return counts


def test_deleting_an_account_leaves_no_row_that_names_the_user(
    alice: Any, settings: Any, tmp_path: Any, django_capture_on_commit_callbacks: Any
) -> None:
    settings.MEDIA_ROOT = tmp_path
    kept_by_other = chat(UserFactory.create(username="bob"))
    conversation = chat(alice)
    conversation_move(conversation=conversation, folder=folder_create(user=alice, name="F"))
    share_create(conversation=conversation)
    deleted_days_ago(chat(alice), 3)
    api_key_create(user=alice, name="ci")
    UsageRecord.objects.create(
        user=alice, conversation=conversation, message=conversation.messages.first(), model="m1"
    )
    export = export_start(user=alice)
    export_build(export_id=export.pk)
    zip_path = export_path(Export.objects.get(pk=export.pk))
    client = Client()
    client.force_login(alice)  # records the session for the account
    session_key = client.session.session_key
    assert rows_referencing(alice.pk)
    user_id = alice.pk  # delete() clears the instance's pk
    with django_capture_on_commit_callbacks(execute=True):
        account_delete(user=alice)
    assert rows_referencing(user_id) == {}
    assert not Message.objects.filter(conversation__owner_id=user_id).exists()
    assert not Session.objects.filter(session_key=session_key).exists()
    assert not UserSession.objects.exists() and not ApiKey.objects.exists()
    assert not zip_path.exists()
    assert UsageRecord.objects.get().user_id is None  # the ledger keeps an anonymous row
    assert Conversation.objects.filter(pk=kept_by_other.pk).exists()


def test_the_account_endpoint_needs_the_username_and_logs_out(alice: Any) -> None:
    chat(alice)
    client = Client()
    client.force_login(alice)
    wrong = client.delete("/api/v1/account", {"confirm": "nope"}, content_type="application/json")
    assert wrong.status_code == 400
    response = client.delete(
        "/api/v1/account", {"confirm": "alice"}, content_type="application/json"
    )
    assert response.status_code == 204
    assert not Conversation.objects.exists()
    assert client.get("/api/v1/conversations").status_code == 401
