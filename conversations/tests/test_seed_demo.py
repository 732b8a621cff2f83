from io import StringIO

import pytest
from django.core.management import call_command

from chatbot.users.models import User
from conversations.models import Conversation
from knowledge.demo import DEMO_COLLECTION
from knowledge.models import Collection
from knowledge.selectors import chunk_search

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media_root(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"


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


def test_seed_demo_ingests_the_product_documentation_for_everyone(django_user_model):
    call_command("seed_demo", stdout=StringIO())
    demo = Collection.objects.get(name=DEMO_COLLECTION)
    assert demo.visibility == "everyone"
    assert demo.documents.filter(status="ready").count() >= 2  # README.md, docs/*.md
    newcomer = django_user_model.objects.create(username="newcomer")
    hits = chunk_search(user=newcomer, query="How does a client resume a turn after reconnecting?")
    assert hits and hits[0].collection_name == DEMO_COLLECTION
