"""Re-embedding every chunk (manage.py reindex) retires every cached answer."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone

from conversations.models import CachedAnswer

pytestmark = pytest.mark.django_db


def test_reindex_empties_the_answer_cache_and_keeps_its_column_usable(settings):
    def entry() -> CachedAnswer:
        return CachedAnswer.objects.create(
            question="When does the cafeteria open?",
            question_hash="0" * 64,
            scope="1" * 64,
            embedding=[0.1] * settings.EMBEDDING_DIMENSIONS,
            answer="At eight.",
            model="m",
            expires_at=timezone.now(),
        )

    entry()
    call_command("reindex", stdout=StringIO(), stderr=StringIO())

    assert CachedAnswer.objects.count() == 0
    assert entry().pk  # the column still takes vectors of the configured size
