"""Fixtures for knowledge tests: the shared sample documents, when they are present."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.conf import settings

DOCS_FORMATS = Path(settings.BASE_DIR).parent / "shared" / "data" / "docs-formats"


@pytest.fixture(scope="session")
def docs_formats() -> Path:
    """`shared/data/docs-formats/` beside the repository (a corpus of edge cases)."""
    if not DOCS_FORMATS.is_dir():
        pytest.skip(f"sample documents not found at {DOCS_FORMATS}")
    return DOCS_FORMATS


@pytest.fixture(scope="session")
def minilm() -> object:
    """The offline MiniLM provider (about 1 s to load), shared by the session."""
    from llm.minilm import MiniLMProvider

    return MiniLMProvider(threads=1)
