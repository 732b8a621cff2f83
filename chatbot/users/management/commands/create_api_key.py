"""Issue an API key for a user from the command line, printing the raw key once."""

from argparse import ArgumentParser

from django.core.management.base import BaseCommand, CommandError

from chatbot.users.selectors import user_get_by_username
from chatbot.users.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it; the key is not stored and not shown again."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the key is for.")

    def handle(self, *args: object, username: str, name: str, **options: object) -> None:
        user = user_get_by_username(username=username)
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        api_key, raw_key = api_key_create(user=user, name=name)
        self.stdout.write(self.style.SUCCESS(f"API key '{api_key.name}' created for {username}:"))
        self.stdout.write(raw_key)
        self.stdout.write("This key is not stored anywhere else: note it now.")
