"""Re-embed every chunk (after changing the embedding model or EMBEDDING_DIMENSIONS)."""

from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from knowledge.reindex import chunks_reembed


class Command(BaseCommand):
    help = "Resize the embedding column to EMBEDDING_DIMENSIONS if needed and re-embed all chunks."

    def handle(self, *args: Any, **options: Any) -> None:
        bar = tqdm(unit="chunk", file=self.stderr)

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        count = chunks_reembed(report=report)
        bar.close()
        self.stdout.write(self.style.SUCCESS(f"{count} chunks re-embedded."))
