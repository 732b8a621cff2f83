"""Create the demo staff user (printing its login once) and the demo data."""

import secrets

from django.core.management.base import BaseCommand

from chatbot.users.models import User
from conversations.models import Conversation, Message
from conversations.services import conversation_create

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
        if User.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(f"Demo user '{DEMO_USERNAME}' exists already (login shown once).")
            return
        password = secrets.token_urlsafe(12)
        user = User.objects.create_superuser(
            username=DEMO_USERNAME, email="", password=password, display_name="Demo"
        )
        self.welcome_conversation(user)
        self.stdout.write(self.style.SUCCESS("Demo staff user created. Log in with:"))
        self.stdout.write(f"  username: {DEMO_USERNAME}\n  password: {password}")
        self.stdout.write("This password is not stored anywhere else: note it now.")

    def welcome_conversation(self, user: User) -> Conversation:
        conversation = conversation_create(owner=user, title="Welcome")
        question = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=WELCOME_QUESTION
        )
        Message.objects.create(
            conversation=conversation,
            role=Message.Role.ASSISTANT,
            content=WELCOME_ANSWER,
            reply_to=question,
            model=conversation.model,
        )
        return conversation
