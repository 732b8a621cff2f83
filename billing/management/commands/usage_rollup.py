"""Rebuild the dashboard's daily roll-up for a range of days (beat keeps the last two fresh)."""

from __future__ import annotations

from argparse import ArgumentParser
from datetime import date, timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from billing.rollup import usage_rollup


class Command(BaseCommand):
    help = "Roll the usage ledger up per day and model, from --since (default: 90 days ago)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--since", type=date.fromisoformat, help="first day, YYYY-MM-DD")
        parser.add_argument("--until", type=date.fromisoformat, help="last day (default: today)")

    def handle(self, *args: object, **options: Any) -> None:
        last = options["until"] or timezone.now().date()
        first = options["since"] or last - timedelta(days=89)
        if first > last:
            raise CommandError("--since is after --until")
        rows = usage_rollup(first=first, last=last)
        self.stdout.write(self.style.SUCCESS(f"{rows} roll-up rows for {first} to {last}"))
