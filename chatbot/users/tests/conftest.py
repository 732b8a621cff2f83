import pytest

from chatbot.users.models import ApiKey, User
from chatbot.users.services import api_key_create
from chatbot.users.tests.factories import UserFactory


@pytest.fixture
def user(db) -> User:
    return UserFactory.create(username="ada")


@pytest.fixture
def issued_key(user) -> tuple[ApiKey, str]:
    """A live key of `user` and its raw value."""
    return api_key_create(user=user, name="laptop script")
