"""Script plans: ``plan set NAME --tokens-per-month N ...`` and ``plan assign USERNAME NAME``."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from billing.selectors import plan_get_by_name
from billing.services import plan_assign, plan_set
from chatbot.users.selectors import user_get_by_username

LIMITS = {
    "requests_per_minute": "chat requests per minute (0: no limit)",
    "tokens_per_month": "tokens per calendar month",
    "cost_cap_per_month": "micro-dollars (1e-6 USD) per month",
    "max_upload_bytes": "largest upload in bytes",
    "storage_bytes": "knowledge storage in bytes",
}


class Command(BaseCommand):
    help = "Create or update a plan (set), or put a user on a plan (assign)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        setter = actions.add_parser("set", help="create a plan or update the limits given")
        setter.add_argument("name")
        for field, meaning in LIMITS.items():
            flag = "--" + field.replace("_", "-")
            setter.add_argument(flag, dest=field, type=non_negative, help=meaning)
        setter.add_argument(
            "--models", help="comma-separated models allowed ('' for every enabled model)"
        )
        assign = actions.add_parser("assign", help="put a user on a plan")
        assign.add_argument("username")
        assign.add_argument("name")

    def handle(self, *args: object, action: str, **options: Any) -> None:
        if action == "set":
            self.set(options)
        else:
            self.assign(options["username"], options["name"])

    def set(self, options: dict[str, Any]) -> None:
        limits = {field: options.get(field) for field in LIMITS}
        if options.get("models") is not None:
            limits["models_allowed"] = [
                m.strip() for m in options["models"].split(",") if m.strip()
            ]
        try:
            plan, created = plan_set(name=options["name"], **limits)
        except ValidationError as exc:
            raise CommandError(f"invalid plan: {exc}") from None
        self.stdout.write(
            self.style.SUCCESS(f"plan {plan.name} {'created' if created else 'updated'}")
        )

    def assign(self, username: str, name: str) -> None:
        user = user_get_by_username(username=username)
        if user is None:
            raise CommandError(f"No user named '{username}'.")
        plan = plan_get_by_name(name=name)
        if plan is None:
            raise CommandError(f"No plan named '{name}'.")
        plan_assign(user_id=user.pk, plan=plan)
        self.stdout.write(self.style.SUCCESS(f"{username} is on plan {name}"))


def non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value
