"""Export: the zip's JSON and Markdown, progress, access-checked download, expiry."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.exports import export_build, export_path, export_start, exports_expire
from conversations.models import Conversation, Export, Message

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Any) -> None:
    settings.MEDIA_ROOT = tmp_path


@pytest.fixture
def alice() -> Any:
    alice = UserFactory.create(username="alice")
    for n in range(3):
        conversation = Conversation.objects.create(owner=alice, title=f"Topic {n}", model="m1")
        Message.objects.create(conversation=conversation, role="user", content=f"question {n}")
        Message.objects.create(
            conversation=conversation, role="assistant", content=f"**answer** {n}"
        )
    gone = Conversation.objects.create(owner=alice, title="In the trash", model="m1")
    Conversation.objects.filter(pk=gone.pk).update(deleted_at=timezone.now())
    return alice


def built(user: Any) -> Export:
    export = export_start(user=user)
    export_build(export_id=export.pk)  # the Celery task's body
    return Export.objects.get(pk=export.pk)


def test_the_zip_holds_every_live_conversation_as_json_and_markdown(alice: Any) -> None:
    other = UserFactory.create(username="bob")
    Conversation.objects.create(owner=other, title="Bob's secret", model="m1")
    export = built(alice)
    assert (export.status, export.done, export.total) == ("ready", 3, 3)
    with zipfile.ZipFile(export_path(export)) as archive:
        data = json.loads(archive.read("conversations.json"))
        markdown = {
            name: archive.read(name).decode() for name in archive.namelist() if name.endswith(".md")
        }
    titles = [c["title"] for c in data["conversations"]]
    assert titles == ["Topic 0", "Topic 1", "Topic 2"]
    assert [m["content"] for m in data["conversations"][1]["messages"]] == [
        "question 1",
        "**answer** 1",
    ]
    assert len(markdown) == 3
    topic = next(text for name, text in markdown.items() if "topic-2" in name)
    assert topic.startswith("# Topic 2") and "## User" in topic and "**answer** 2" in topic


def test_a_second_start_while_running_returns_the_same_export(alice: Any) -> None:
    assert export_start(user=alice).pk == export_start(user=alice).pk


def test_the_api_starts_reports_progress_and_downloads_only_for_the_owner(alice: Any) -> None:
    client = Client()
    client.force_login(alice)
    started = client.post("/api/v1/exports")
    assert started.status_code == 202 and started.json()["download_url"] is None
    export_id = started.json()["id"]
    export_build(export_id=export_id)
    status = client.get(f"/api/v1/exports/{export_id}").json()
    assert (status["status"], status["done"], status["total"]) == ("ready", 3, 3)
    response = client.get(status["download_url"])
    assert response.status_code == 200
    body = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert "conversations.json" in zipfile.ZipFile(io.BytesIO(body)).namelist()
    mallory = Client()
    mallory.force_login(UserFactory.create(username="mallory"))
    assert mallory.get(status["download_url"]).status_code == 404
    assert mallory.get(f"/api/v1/exports/{export_id}").status_code == 404


def test_expired_exports_lose_their_file_and_row(alice: Any) -> None:
    export = built(alice)
    path = export_path(export)
    assert exports_expire(now=timezone.now()) == 0
    assert exports_expire(now=timezone.now() + timedelta(days=2)) == 1
    assert not path.exists() and not Export.objects.exists()
