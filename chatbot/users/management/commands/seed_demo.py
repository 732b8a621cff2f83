"""Create the demo staff user (printing its login once) and the demo data."""

import secrets

from django.core.management.base import BaseCommand

from chatbot.users.models import User

DEMO_USERNAME = "demo"


class Command(BaseCommand):
    help = "Create a demo staff user and demo data; safe to run again."

    def handle(self, *args: object, **options: object) -> None:
        if User.objects.filter(username=DEMO_USERNAME).exists():
            self.stdout.write(f"Demo user '{DEMO_USERNAME}' exists already (login shown once).")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(
            username=DEMO_USERNAME, email="", password=password, display_name="Demo"
        )
        self.stdout.write(self.style.SUCCESS("Demo staff user created. Log in with:"))
        self.stdout.write(f"  username: {DEMO_USERNAME}\n  password: {password}")
        self.stdout.write("This password is not stored anywhere else: note it now.")
