"""Share links: snapshot, token, expiry, revoke, identical 404s, privacy, continue, limits."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import redis
from django.conf import settings
from django.test import Client
from django.utils import timezone

from chatbot.users.tests.factories import UserFactory
from conversations.exceptions import InvalidInput, NotFound, SharingDisabled
from conversations.models import Conversation, Message, ShareLink, SharingSettings
from conversations.shares import share_create, share_list, share_open, share_revoke

pytestmark = pytest.mark.django_db

SECRET_SNIPPET = "the acquisition closes on 3 March"


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> None:
    with redis.Redis.from_url(settings.REDIS_URL) as client:
        for key in client.scan_iter("*share-page*"):
            client.delete(key)


@pytest.fixture
def owner() -> Any:
    return UserFactory.create(username="owner-user", email="owner@example.com")


@pytest.fixture
def conversation(owner: Any) -> Conversation:
    conversation = Conversation.objects.create(owner=owner, title="Pricing talk", model="m1")
    question = Message.objects.create(
        conversation=conversation, role="user", content="What does **plan B** cost?"
    )
    Message.objects.create(
        conversation=conversation,
        role="assistant",
        content="It costs 10 dollars <script>alert(1)</script> [1].",
        reply_to=question,
        citations=[{"title": "Price list 2026", "page": 4, "snippet": SECRET_SNIPPET}],
    )
    return conversation


def test_the_token_is_long_random_and_unrelated_to_ids(conversation: Conversation) -> None:
    first = share_create(conversation=conversation)
    second = share_create(conversation=conversation)
    assert len(first.token) >= 32  # 24 random bytes, base64url
    assert first.token != second.token
    assert str(conversation.pk) not in first.token[:4]


def test_messages_written_after_sharing_are_not_shown(conversation: Conversation) -> None:
    share = share_create(conversation=conversation)
    Message.objects.create(conversation=conversation, role="user", content="LATER question")
    shared = share_open(token=share.token)
    assert len(shared.messages) == 2
    assert all("LATER" not in message.html for message in shared.messages)


def test_an_answer_still_running_at_share_time_is_not_in_the_snapshot(
    conversation: Conversation,
) -> None:
    asked = Message.objects.create(conversation=conversation, role="user", content="next?")
    running = Message.objects.create(
        conversation=conversation, role="assistant", status="pending", reply_to=asked
    )
    share = share_create(conversation=conversation)
    Message.objects.filter(pk=running.pk).update(status="complete", content="finished later")
    assert [m.html for m in share_open(token=share.token).messages][-1] == "<p>next?</p>\n"


def test_markdown_is_rendered_and_sanitized(conversation: Conversation) -> None:
    shared = share_open(token=share_create(conversation=conversation).token)
    assert "<strong>plan B</strong>" in shared.messages[0].html
    assert "<script>" not in shared.messages[1].html


def test_views_are_counted(conversation: Conversation) -> None:
    share = share_create(conversation=conversation)
    for _ in range(3):
        share_open(token=share.token)
    share.refresh_from_db()
    assert share.view_count == 3


def test_unknown_revoked_expired_deleted_and_disabled_links_give_the_same_404(
    conversation: Conversation,
) -> None:
    client = Client()
    revoked = share_revoke(share=share_create(conversation=conversation))
    expired = share_create(conversation=conversation, expires_in_days=1)
    ShareLink.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    other = Conversation.objects.create(owner=conversation.owner, title="x", model="m1")
    Message.objects.create(conversation=other, role="user", content="hi")
    deleted = share_create(conversation=other)
    Conversation.objects.filter(pk=other.pk).update(deleted_at=timezone.now())
    live = share_create(conversation=conversation)
    responses = [
        client.get(f"/s/{token}")
        for token in ["x" * 32, revoked.token, expired.token, deleted.token]
    ]
    SharingSettings.objects.update_or_create(pk=1, defaults={"sharing_enabled": False})
    responses.append(client.get(f"/s/{live.token}"))
    assert {r.status_code for r in responses} == {404}
    assert len({r.content for r in responses}) == 1
    assert len({r.headers.get("Content-Type") for r in responses}) == 1


def test_the_public_page_shows_no_private_data(conversation: Conversation, owner: Any) -> None:
    share = share_create(conversation=conversation)
    response = Client().get(f"/s/{share.token}")
    html = response.content.decode()
    assert response.status_code == 200
    assert "Pricing talk" in html and "Price list 2026" in html and "p. 4" in html
    for private in [
        owner.email,
        owner.username,
        f"user {owner.pk}",
        f'"{owner.pk}"',
        settings.CHAT_SYSTEM_PROMPT,
        SECRET_SNIPPET,
        "<script>alert",
    ]:
        assert private not in html
    assert response["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in response["Content-Security-Policy"]


def test_snippets_show_only_when_the_owner_included_them(conversation: Conversation) -> None:
    share = share_create(conversation=conversation, include_snippets=True)
    assert SECRET_SNIPPET in Client().get(f"/s/{share.token}").content.decode()


def test_a_logged_in_viewer_continues_in_a_private_copy(conversation: Conversation) -> None:
    share = share_create(conversation=conversation)
    Message.objects.create(conversation=conversation, role="user", content="LATER question")
    viewer = UserFactory.create(username="viewer")
    client = Client()
    assert client.post(f"/s/{share.token}/continue").status_code == 302  # to the login page
    client.force_login(viewer)
    response = client.post(f"/s/{share.token}/continue")
    copy = Conversation.objects.get(owner=viewer)
    assert response["Location"] == f"/?c={copy.pk}"
    texts = list(copy.messages.order_by("id").values_list("content", flat=True))
    assert len(texts) == 2 and "LATER question" not in texts
    assert copy.messages.filter(owner=viewer).count() == 2
    (citation,) = copy.messages.get(role="assistant").citations
    assert citation == {"title": "Price list 2026", "page": 4}  # no private snippet copied


def test_staff_can_turn_sharing_off_for_new_links(conversation: Conversation) -> None:
    SharingSettings.objects.update_or_create(pk=1, defaults={"sharing_enabled": False})
    with pytest.raises(SharingDisabled):
        share_create(conversation=conversation)


def test_expiry_out_of_range_and_empty_conversations_are_refused(owner: Any) -> None:
    empty = Conversation.objects.create(owner=owner, title="e", model="m1")
    with pytest.raises(InvalidInput):
        share_create(conversation=empty)
    Message.objects.create(conversation=empty, role="user", content="hi")
    with pytest.raises(InvalidInput):
        share_create(conversation=empty, expires_in_days=0)


def test_the_owner_lists_and_revokes_through_the_api_and_others_cannot(
    conversation: Conversation, django_assert_max_num_queries: Any
) -> None:
    client = Client()
    client.force_login(conversation.owner)
    created = client.post(
        f"/api/v1/conversations/{conversation.pk}/shares",
        {"expires_in_days": 7},
        content_type="application/json",
    )
    assert created.status_code == 201
    share_id = created.json()["id"]
    assert created.json()["url"].startswith("/s/")
    for _ in range(5):
        share_create(conversation=conversation)
    with django_assert_max_num_queries(3):
        listed = client.get("/api/v1/shares").json()
    assert len(listed) == 6
    mallory = Client()
    mallory.force_login(UserFactory.create(username="mallory"))
    assert mallory.delete(f"/api/v1/shares/{share_id}").status_code == 404
    assert (
        mallory.post(
            f"/api/v1/conversations/{conversation.pk}/shares", {}, content_type="application/json"
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/shares/{share_id}").json()["revoked_at"] is not None
    with pytest.raises(NotFound):
        share_open(token=ShareLink.objects.get(pk=share_id).token)


def test_share_list_is_one_query(
    conversation: Conversation, django_assert_num_queries: Any
) -> None:
    for _ in range(4):
        share_create(conversation=conversation)
    with django_assert_num_queries(1):
        assert len(share_list(user=conversation.owner)) == 4


def test_the_public_page_is_rate_limited_per_ip(conversation: Conversation, settings: Any) -> None:
    settings.ANON_REQUESTS_PER_MINUTE = 3
    share = share_create(conversation=conversation)
    client = Client(REMOTE_ADDR="203.0.113.9")
    statuses = [client.get(f"/s/{share.token}").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = client.get(f"/s/{share.token}")
    assert int(limited["Retry-After"]) >= 1
    assert Client(REMOTE_ADDR="203.0.113.10").get(f"/s/{share.token}").status_code == 200


def test_staff_turn_sharing_off_in_the_admin(conversation: Conversation) -> None:
    staff = UserFactory.create(username="staff", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    response = client.post(
        "/admin/conversations/sharingsettings/add/", {"sharing_enabled": ""}, follow=True
    )
    assert response.status_code == 200
    assert SharingSettings.objects.get().sharing_enabled is False
    with pytest.raises(SharingDisabled):
        share_create(conversation=conversation)
