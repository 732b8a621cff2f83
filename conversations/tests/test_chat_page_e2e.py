"""The chat page in a real browser: Chromium (Playwright) against the web process, the fake
OpenAI server, the test database and this worker's Redis database.

pytest-django's ``live_server`` serves no websockets, so the web process (``python -m
chatbot.serve``, uvicorn) runs as a subprocess on the test database; the tests commit their data
(``transaction=True``) so that process sees it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chatbot.users.tests.factories import UserFactory
from conftest import PROJECT_DIR, web_listening_port, worker_env
from conversations.models import Message
from llm.fake_server import FakeServerConfig, RunningFakeServer, run_in_thread, token_text

CHROMIUM = Path("/usr/bin/chromium")
if not CHROMIUM.exists():
    pytest.skip(f"end-to-end tests need Chromium at {CHROMIUM}", allow_module_level=True)
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="end-to-end tests need playwright (requirements-dev.txt)"
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "correct horse battery staple"
TOKENS_PER_S = 40
TIMEOUT_MS = 10_000
ASSISTANT = "[data-testid=message][data-role=assistant]"

# Every text the last assistant message shows, recorded in the page on each DOM change (from the
# first script of every load, reloads included), so a token applied twice cannot slip by
# between two polls.
RECORD_ASSISTANT_TEXTS = """
window.__assistantTexts = [];
new MutationObserver(() => {
  const bodies = document.querySelectorAll('[data-role="assistant"] .msg-body');
  const text = bodies.length ? bodies[bodies.length - 1].textContent : null;
  const seen = window.__assistantTexts;
  if (text !== null && seen[seen.length - 1] !== text) seen.push(text);
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


def answer(tokens: int) -> str:
    return "".join(token_text(n) for n in range(1, tokens + 1))


@pytest.fixture(scope="module")
def e2e_fake_server() -> Iterator[RunningFakeServer]:
    server = run_in_thread(FakeServerConfig(tokens=40, tokens_per_s=TOKENS_PER_S))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def server_url(
    django_db_setup: None, e2e_fake_server: RunningFakeServer, tmp_path_factory: Any
) -> Iterator[str]:
    """The product's web process on a port it picks (``-p 0``, read back from its log)."""
    log_path = tmp_path_factory.mktemp("web") / "web.log"
    env = {
        # The test database, this worker's Redis (REDIS_URL and PYTEST_XDIST_WORKER, from which
        # settings_test derives the same Redis database as this process), settings_test.
        **worker_env(),
        "OPENAI_BASE_URL": e2e_fake_server.base_url,
        "OPENAI_API_KEY": "test-key-not-real",
        "CHAT_MODELS": "fake-model",
        # The fake server's /v1/moderations (it flags nothing until a test sets flag words).
        "MODERATION": "openai",
        "MODERATION_BASE_URL": e2e_fake_server.base_url,
        "MODERATION_OUTPUT_EVERY_CHARS": "20",
    }
    env.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)  # set for this process only (see ``browser``)
    cmd = [sys.executable, "-m", "chatbot.serve", "-b", "127.0.0.1", "-p", "0"]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            cmd, cwd=PROJECT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield f"http://127.0.0.1:{web_listening_port(process, log_path)}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with pytest.MonkeyPatch.context() as patch, sync_api.sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop running on this thread, so Django would
        # refuse the tests' ORM calls; no coroutine here touches the ORM, so that is safe.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Any, server_url: str, e2e_fake_server: RunningFakeServer) -> Iterator[Any]:
    """A fresh browser context, logged in through the login form."""
    e2e_fake_server.clear_override()
    e2e_fake_server.set_flag_words()
    user = UserFactory.create(username="alice")
    user.set_password(PASSWORD)
    user.save(update_fields=["password"])
    context = browser.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    context.add_init_script(RECORD_ASSISTANT_TEXTS)
    page = context.new_page()
    page.goto(f"{server_url}/")
    sync_api.expect(page).to_have_url(re.compile(r"/login/"))  # the chat requires a login
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{server_url}/")
    sync_api.expect(page.get_by_test_id("connection-status")).to_have_text("Not connected")
    yield page
    context.close()


def send(page: Any, text: str) -> None:
    page.get_by_test_id("message-input").fill(text)
    page.get_by_test_id("message-input").press("Enter")


def assistant_text(page: Any) -> str:
    return str(page.locator(f"{ASSISTANT} .msg-body").last.text_content())


def recorded_texts(page: Any) -> list[str]:
    return list(page.evaluate("window.__assistantTexts"))


def wait_for_text(page: Any, text: str) -> None:
    page.wait_for_function(
        """(text) => [...document.querySelectorAll('[data-role="assistant"] .msg-body')]
             .some((body) => body.textContent.includes(text))""",
        arg=text,
    )


def test_a_message_streams_its_whole_answer_and_ends_complete(page):
    send(page, "Hello, browser")

    user = page.locator("[data-testid=message][data-role=user]")
    sync_api.expect(user).to_have_text(re.compile("Hello, browser"))
    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "streaming")
    sync_api.expect(page.get_by_test_id("stop")).to_be_visible()
    sync_api.expect(page.get_by_test_id("send")).to_be_disabled()
    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete")

    assert assistant_text(page) == answer(40)
    assert all(answer(40).startswith(text) for text in recorded_texts(page))
    assert any(0 < len(text) < len(answer(40)) for text in recorded_texts(page)), "not streamed"
    sync_api.expect(user).not_to_have_attribute("data-message-id", "")  # acknowledged
    sync_api.expect(page.get_by_test_id("message-status")).to_have_count(0)
    sync_api.expect(page.get_by_test_id("stop")).to_be_hidden()
    sync_api.expect(page.get_by_test_id("send")).to_be_enabled()
    sync_api.expect(page.get_by_test_id("connection-status")).to_have_text("Connected")
    sync_api.expect(page.get_by_test_id("chat-title")).to_have_text("Hello, browser")


def test_stop_mid_answer_keeps_the_partial_text_under_a_stopped_badge(page, e2e_fake_server):
    e2e_fake_server.set_override(tokens=400, tokens_per_s=TOKENS_PER_S)
    send(page, "Tell me everything")
    wait_for_text(page, token_text(5))

    page.get_by_test_id("stop").click()

    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "stopped")
    sync_api.expect(page.get_by_test_id("message-status")).to_have_text("Stopped")
    shown = assistant_text(page)
    assert shown.startswith(answer(5))
    assert answer(400).startswith(shown) and len(shown) < len(answer(400))
    stored = Message.objects.get(role=Message.Role.ASSISTANT)
    assert (stored.status, stored.content) == ("stopped", shown)
    sync_api.expect(page.get_by_test_id("stop")).to_be_hidden()
    sync_api.expect(page.get_by_test_id("send")).to_be_enabled()


def test_reloading_mid_answer_resumes_it_and_shows_every_token_once(page, e2e_fake_server):
    e2e_fake_server.set_override(tokens=120, tokens_per_s=TOKENS_PER_S)  # three seconds
    send(page, "A long answer, please")
    wait_for_text(page, token_text(10))

    page.reload()

    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "complete")
    texts = recorded_texts(page)  # since the reload only: the init script ran again
    assert assistant_text(page) == answer(120)
    duplicated = [text for text in texts if not answer(120).startswith(text)]
    assert not duplicated, f"text that is not a prefix of the answer: {duplicated[:1]}"
    assert any(0 < len(text) < len(answer(120)) for text in texts), "the reload missed the stream"
    sync_api.expect(page.locator("[data-testid=message][data-role=user]")).to_have_count(1)
    sync_api.expect(page.get_by_test_id("message-status")).to_have_count(0)


def test_when_no_provider_can_answer_the_page_says_so_politely(page, e2e_fake_server):
    e2e_fake_server.set_override(fail="500")
    send(page, "Anyone there?")

    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "failed")
    sync_api.expect(page.get_by_test_id("message-status")).to_have_text(
        "Failed: the model is busy or unavailable right now. Please try again in a minute."
    )
    sync_api.expect(page.get_by_test_id("send")).to_be_enabled()


def test_a_flagged_answer_is_withheld_from_the_page(page, e2e_fake_server):
    e2e_fake_server.set_flag_words("tok12 ")
    send(page, "Say something")

    sync_api.expect(page.locator(ASSISTANT)).to_have_attribute("data-status", "moderated")
    sync_api.expect(page.get_by_test_id("message-status")).to_contain_text("Withheld")
    assert assistant_text(page) == ""
    sync_api.expect(page.get_by_test_id("send")).to_be_enabled()


def test_the_search_box_finds_a_past_message_and_shows_markup_as_text(page):
    from conversations.models import Conversation

    alice = UserFactory.create(username="alice")
    conversation = Conversation.objects.create(owner=alice, title="Old chat", model="fake-model")
    Message.objects.create(
        conversation=conversation,
        role="user",
        content='walrus facts <img src=x onerror="window.__pwned = 1"> & more',
    )
    page.get_by_test_id("search-input").fill("walrus")
    result = page.get_by_test_id("search-result")
    sync_api.expect(result).to_have_count(1)
    sync_api.expect(result.locator("mark")).to_have_text("walrus")
    assert result.locator("img").count() == 0
    assert page.evaluate("window.__pwned === undefined")
    result.click()
    page.wait_for_url(re.compile(rf"\?c={conversation.pk}$"))
    sync_api.expect(page.get_by_test_id("chat-title")).to_have_text("Old chat")
    sync_api.expect(page.get_by_test_id("conversation-actions")).to_be_visible()


def test_the_trash_restores_a_deleted_conversation(page, server_url):
    from django.utils import timezone

    from conversations.models import Conversation

    alice = UserFactory.create(username="alice")
    gone = Conversation.objects.create(
        owner=alice, title="Deleted plans", model="fake-model", deleted_at=timezone.now()
    )
    page.get_by_test_id("your-data").click()
    page.wait_for_url(f"{server_url}/history/")
    row = page.get_by_test_id("trash-list").locator("tr")
    sync_api.expect(row).to_have_count(1)
    sync_api.expect(row).to_contain_text("Deleted plans")
    row.get_by_role("button", name="Restore").click()
    sync_api.expect(row).to_have_count(0)
    gone.refresh_from_db()
    assert gone.deleted_at is None
