"""An on-disk cache of embeddings for the knowledge benchmarks, so a re-ingestion (after a
change to the models, the search or the chunking) does not re-embed a corpus (SciFact: 5,183
abstracts, 10+ minutes on two idle cores).

Entries are keyed by the SHA-256 of the chunk text, in one SQLite file per model: the file's
name hashes the embedding code (``llm/embeddings.py``, ``llm/minilm.py``) and the provider
settings, so a change there starts a new file. The corpus and the chunking need no part in the
key: a chunk whose text changed is a miss, and is embedded then. The cache wraps the configured
provider (``llm.embeddings.embedding_provider``) for this process only; the ingestion path is
otherwise the product's own.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = ROOT / ".data" / "bench-cache" / "embeddings"
MODEL_CODE = ("llm/embeddings.py", "llm/minilm.py")


def model_key() -> str:
    """What the vectors depend on: the embedding code and the provider settings."""
    from django.conf import settings

    digest = hashlib.sha256()
    for name in MODEL_CODE:
        path = ROOT / name
        if path.exists():
            digest.update(path.read_bytes())
    for value in (
        settings.EMBEDDING_PROVIDER,
        settings.EMBEDDING_MODEL,
        settings.EMBEDDING_DIMENSIONS,
    ):
        digest.update(f"\0{value}".encode())
    return digest.hexdigest()[:16]


class CachedEmbeddings:
    """An ``EmbeddingProvider`` that answers from the cache and embeds only the misses."""

    def __init__(self, inner: object, path: Path) -> None:
        self._inner = inner
        self.name = inner.name  # type: ignore[attr-defined]
        self.dimensions = inner.dimensions  # type: ignore[attr-defined]
        self.max_tokens = inner.max_tokens  # type: ignore[attr-defined]
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path)
        self._db.execute("CREATE TABLE IF NOT EXISTS vectors (digest BLOB PRIMARY KEY, v BLOB)")
        self.hits = 0
        self.misses = 0

    def count_tokens(self, text: str) -> int:
        return int(self._inner.count_tokens(text))  # type: ignore[attr-defined]

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        digests = [hashlib.sha256(text.encode()).digest() for text in texts]
        found = dict(self._lookup(digests))
        missing = [i for i, digest in enumerate(digests) if digest not in found]
        if missing:
            fresh = self._inner.embed([texts[i] for i in missing])  # type: ignore[attr-defined]
            rows = [(digests[i], np.asarray(v, dtype=np.float32).tobytes()) for i, v in
                    zip(missing, fresh, strict=True)]  # fmt: skip
            self._db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?)", rows)
            self._db.commit()
            found.update(rows)
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        return [np.frombuffer(found[digest], dtype=np.float32).tolist() for digest in digests]

    def embed_query(self, text: str) -> list[float]:
        """Questions are not cached: they are few, and timed by some benchmarks."""
        vector: list[float] = self._inner.embed_query(text)  # type: ignore[attr-defined]
        return vector

    def _lookup(self, digests: list[bytes]) -> list[tuple[bytes, bytes]]:
        if not digests:
            return []
        marks = ",".join("?" * len(digests))
        query = f"SELECT digest, v FROM vectors WHERE digest IN ({marks})"  # noqa: S608
        return list(self._db.execute(query, digests))


def embedding_cache_install(directory: Path = DEFAULT_DIR) -> CachedEmbeddings:
    """Make ``llm.embeddings.embedding_provider()`` return the cached provider in this process."""
    from llm import embeddings

    cached = CachedEmbeddings(embeddings.embedding_provider(), directory / f"{model_key()}.sqlite3")
    embeddings.embedding_provider = lambda: cached  # type: ignore[assignment]
    return cached
