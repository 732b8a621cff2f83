"""Upload files (or every file in directories) into a collection and ingest them here."""

from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from knowledge import services
from knowledge.exceptions import KnowledgeError
from knowledge.models import Collection


class Command(BaseCommand):
    help = "Ingest files or directories into a collection (created when missing), with progress."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("paths", nargs="+", type=Path)
        parser.add_argument("--collection", required=True, help="Collection name.")
        parser.add_argument(
            "--owner", help="Username owning the collection (default: a superuser)."
        )
        parser.add_argument(
            "--visibility",
            default=Collection.Visibility.OWNER,
            choices=Collection.Visibility.values,
            help="For a new collection.",
        )
        parser.add_argument(
            "--queue", action="store_true", help="Leave ingestion to the Celery workers."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        owner = self.owner(options["owner"])
        try:
            files = services.files_under(options["paths"])
            collection = services.collection_ensure(
                owner=owner, name=options["collection"], visibility=options["visibility"]
            )
        except KnowledgeError as exc:
            raise CommandError(exc.detail) from exc
        outcomes: dict[str, int] = {}
        for path in tqdm(files, unit="file", file=self.stderr):
            outcome = self.ingest(owner, collection, path, queue=options["queue"])
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        summary = ", ".join(f"{count} {outcome}" for outcome, count in sorted(outcomes.items()))
        self.stdout.write(self.style.SUCCESS(f"{len(files)} files: {summary}"))

    def ingest(self, owner: Any, collection: Collection, path: Path, *, queue: bool) -> str:
        try:
            document = services.document_upload_path(
                uploader=owner, collection=collection, path=path, enqueue=queue
            )
        except KnowledgeError as exc:
            self.stderr.write(f"{path}: {exc.detail}")
            return "rejected"
        if queue:
            return "queued"
        outcome = services.document_ingest(document_id=document.pk)
        if outcome == "failed":
            document.refresh_from_db()
            self.stderr.write(f"{path}: {document.error_reason}")
        return "already ingested" if outcome == "skipped" else outcome

    def owner(self, username: str | None) -> Any:
        users = get_user_model().objects
        user = (
            users.filter(username=username).first()
            if username
            else users.filter(is_superuser=True).order_by("pk").first()
        )
        if user is None:
            raise CommandError("no such owner: give --owner USERNAME (or create a superuser)")
        return user
