from __future__ import annotations

import pytest

from llm.checks import llm_settings_check
from llm.failover import FailoverProvider
from llm.moderation import OpenAIModerator, RuleModerator
from llm.provider_config import Target
from llm.registry import chat_provider, moderator


def test_without_chat_providers_there_is_one_provider_like_before(settings):
    settings.CHAT_PROVIDERS = ""
    settings.CHAT_FALLBACKS = ""
    settings.OPENAI_BASE_URL = "http://127.0.0.1:9/v1"
    settings.OPENAI_API_KEY = "sk-test"

    provider = chat_provider()

    assert isinstance(provider, FailoverProvider)
    assert list(provider.providers) == ["openai"]
    assert provider.targets("gpt-4o-mini") == [Target("openai", "gpt-4o-mini")]


def test_named_providers_and_fallbacks_are_built_from_the_settings(settings, monkeypatch):
    monkeypatch.setenv("TEST_BACKUP_KEY", "sk-backup")
    settings.CHAT_PROVIDERS = (
        "main=http://127.0.0.1:9/v1, backup=http://127.0.0.1:10/v1|TEST_BACKUP_KEY"
    )
    settings.CHAT_FALLBACKS = "m=main:m,backup:m2"

    provider = chat_provider()

    assert isinstance(provider, FailoverProvider)
    assert list(provider.providers) == ["main", "backup"]
    assert provider.targets("m") == [Target("main", "m"), Target("backup", "m2")]
    assert provider.providers["backup"]._headers["Authorization"] == "Bearer sk-backup"  # type: ignore[attr-defined]


def test_the_system_check_reports_unreadable_provider_settings(settings):
    settings.CHAT_PROVIDERS = "main=http://127.0.0.1:9/v1"
    settings.CHAT_FALLBACKS = "m=elsewhere:m"

    errors = llm_settings_check()

    assert [error.id for error in errors] == ["llm.E001"]
    assert "unknown provider 'elsewhere'" in errors[0].msg


def test_the_system_check_reports_a_missing_rules_file(settings, tmp_path):
    settings.MODERATION = "rules"
    settings.MODERATION_RULES_FILE = str(tmp_path / "missing.txt")

    assert [error.id for error in llm_settings_check()] == ["llm.E002"]


@pytest.mark.parametrize(("mode", "kind"), [("rules", RuleModerator), ("openai", OpenAIModerator)])
def test_the_moderator_follows_the_moderation_setting(settings, mode, kind):
    settings.MODERATION = mode
    assert isinstance(moderator(), kind)
    settings.MODERATION = "off"
    assert moderator() is None
