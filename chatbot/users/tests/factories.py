from factory.declarations import Sequence
from factory.django import DjangoModelFactory
from factory.faker import Faker

from chatbot.users.models import User


class UserFactory(DjangoModelFactory[User]):
    class Meta:
        model = User
        django_get_or_create = ("username",)

    username = Sequence(lambda n: f"user{n}")
    display_name = Faker("name")
