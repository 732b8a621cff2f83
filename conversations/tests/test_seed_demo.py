from io import StringIO

import pytest
from django.core.management import call_command

from chatbot.users.models import User
from conversations.models import Conversation

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_a_staff_user_with_a_welcome_conversation_once():
    first = StringIO()
    call_command("seed_demo", stdout=first)
    password = first.getvalue().split("password: ")[1].split()[0]
    user = User.objects.get(username="demo")
    assert user.is_staff and user.check_password(password)
    assert Conversation.objects.get(owner=user).messages.count() == 2

    again = StringIO()
    call_command("seed_demo", stdout=again)
    assert "exists already" in again.getvalue()
    assert "password" not in again.getvalue().replace("(login shown once)", "")
    assert Conversation.objects.filter(owner=user).count() == 1
