import pytest

from conversations.models import Message
from conversations.services import conversation_create

pytestmark = pytest.mark.django_db


def test_staff_see_conversations_and_messages_in_the_admin(admin_client, admin_user):
    conversation = conversation_create(owner=admin_user, title="Quarterly numbers")
    message = Message.objects.create(conversation=conversation, role="user", content="How much?")

    listing = admin_client.get("/admin/conversations/conversation/")
    assert listing.status_code == 200
    assert "Quarterly numbers" in listing.content.decode()
    detail = admin_client.get(f"/admin/conversations/conversation/{conversation.pk}/change/")
    assert "How much?" in detail.content.decode()
    assert admin_client.get("/admin/conversations/message/").status_code == 200
    assert admin_client.get(f"/admin/conversations/message/{message.pk}/change/").status_code == 200


def test_the_chat_page_needs_a_login(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


def test_the_chat_page_renders_for_a_user(admin_client):
    page = admin_client.get("/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="message-input"' in html
    assert "conversations/chat.js" in html
    assert "csrftoken" in page.cookies


def test_staff_see_cached_answers_read_only(admin_client):
    from django.utils import timezone

    from conversations.models import CachedAnswer

    entry = CachedAnswer.objects.create(
        question="When does the cafeteria open?",
        question_hash="0" * 64,
        scope="1" * 64,
        embedding=[0.1] * 384,
        answer="At eight [1].",
        model="fake-model",
        expires_at=timezone.now(),
    )
    listing = admin_client.get("/admin/conversations/cachedanswer/")
    assert listing.status_code == 200
    assert "When does the cafeteria open?" in listing.content.decode()
    detail = admin_client.get(f"/admin/conversations/cachedanswer/{entry.pk}/change/")
    assert detail.status_code == 200
    assert "At eight [1]." in detail.content.decode()
    assert admin_client.get("/admin/conversations/cachedanswer/add/").status_code == 403
