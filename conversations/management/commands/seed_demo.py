"""Create the demo staff user (printing its login once) and the demo data."""

import secrets

from django.core.management.base import BaseCommand

from chatbot.users.services import demo_user_create
from conversations.services import conversation_with_exchange_create
from knowledge.demo import demo_collection_seed

WELCOME_QUESTION = "What can this chat do?"
WELCOME_ANSWER = (
    "Ask a question and the answer streams in as it is written. Close the tab or lose the "
    "connection mid-answer: when you come back, the answer picks up where it was, with nothing "
    "lost or repeated. Stop ends an answer at once and keeps what was written. Staff see "
    "conversations, messages and API keys in the admin; programs use the REST API "
    "(/api/v1/docs) with an API key."
)

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create a demo staff user and demo data; safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        password = secrets.token_urlsafe(12)
        user = demo_user_create(username=DEMO_USERNAME, password=password)
        self.documents_seed()
        if user is None:
            self.stdout.write(f"Demo user '{DEMO_USERNAME}' exists already (login shown once).")
            return
        conversation_with_exchange_create(
            owner=user, title="Welcome", question=WELCOME_QUESTION, answer=WELCOME_ANSWER
        )
        self.stdout.write(self.style.SUCCESS("Demo staff user created. Log in with:"))
        self.stdout.write(f"  username: {DEMO_USERNAME}\n  password: {password}")
        self.stdout.write("This password is not stored anywhere else: note it now.")

    def documents_seed(self) -> None:
        outcomes = demo_collection_seed(owner_username=DEMO_USERNAME)
        summary = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
        self.stdout.write(f"Demo collection (the product's documentation): {summary}.")
