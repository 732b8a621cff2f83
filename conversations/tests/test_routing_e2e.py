"""The ``auto`` model in a real browser: the picker offers it, each answer says who wrote it."""

from __future__ import annotations

import re

import pytest

from billing.models import ModelPrice
from conversations.tests.test_chat_page_e2e import (  # noqa: F401  (fixtures)
    ASSISTANT,
    browser,
    e2e_fake_server,
    page,
    send,
    server_url,
    sync_api,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_an_auto_chat_shows_which_model_answered_each_question(page, server_url):  # noqa: F811
    ModelPrice.objects.create(model="fake-model", input_price=100, output_price=400)
    ModelPrice.objects.create(model="fake-strong", input_price=5_000, output_price=15_000)
    page.reload()  # the picker lists the catalogue as it is now
    picker = page.get_by_test_id("model-picker")
    sync_api.expect(picker.locator("option[value=auto]")).to_have_count(1)
    picker.select_option("auto")

    send(page, "def f(x):\n    return x + 1 fails, why?")
    answers = page.locator(ASSISTANT)
    sync_api.expect(answers.last).to_have_attribute("data-status", "complete")
    sync_api.expect(page.get_by_test_id("message-model").last).to_have_text(
        "Answered by fake-strong"
    )
    sync_api.expect(page.get_by_test_id("conversation-model")).to_have_text("Model: auto")

    send(page, "Thanks!")
    sync_api.expect(answers).to_have_count(2)
    sync_api.expect(answers.last).to_have_attribute("data-status", "complete")
    sync_api.expect(page.get_by_test_id("message-model")).to_have_text(
        ["Answered by fake-strong", "Answered by fake-model"]
    )

    page.reload()  # from the history: the same labels
    sync_api.expect(page.get_by_test_id("message-model")).to_have_text(
        ["Answered by fake-strong", "Answered by fake-model"]
    )
    assert re.search(r"[?&]c=\d+", page.url)
