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
