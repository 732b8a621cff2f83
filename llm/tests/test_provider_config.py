from __future__ import annotations

import pytest

from llm.provider_config import (
    ProviderConfigError,
    ProviderSpec,
    Target,
    fallbacks_parse,
    providers_parse,
)


def test_providers_are_read_in_order_with_the_name_of_their_key_variable():
    specs = providers_parse(
        "openai=https://api.openai.com/v1|OPENAI_API_KEY, vllm=http://gpu:8000/v1"
    )

    assert specs == [
        ProviderSpec("openai", "https://api.openai.com/v1", "OPENAI_API_KEY"),
        ProviderSpec("vllm", "http://gpu:8000/v1", ""),
    ]


def test_a_key_comes_from_the_named_variable_or_its_file(monkeypatch, tmp_path):
    monkeypatch.setenv("TEST_PROVIDER_KEY", "sk-from-env")
    assert ProviderSpec("a", "http://x/v1", "TEST_PROVIDER_KEY").api_key() == "sk-from-env"
    (tmp_path / "key").write_text("sk-from-file\n")
    monkeypatch.setenv("TEST_PROVIDER_KEY_FILE", str(tmp_path / "key"))
    assert ProviderSpec("a", "http://x/v1", "TEST_PROVIDER_KEY").api_key() == "sk-from-file"
    assert ProviderSpec("a", "http://x/v1").api_key() is None


@pytest.mark.parametrize(
    "value",
    [
        "openai",  # no URL
        "openai=ftp://x",  # not http
        "openai=https://x/v1|sk-live-123",  # a key instead of a variable name
        "a=http://x/v1,a=http://y/v1",  # twice
    ],
)
def test_bad_provider_settings_are_refused_with_a_reason(value):
    with pytest.raises(ProviderConfigError):
        providers_parse(value)


def test_fallbacks_keep_their_order_and_allow_colons_in_model_names():
    routes = fallbacks_parse(
        "gpt-4o-mini=openai:gpt-4o-mini,ollama:llama3.1:8b; big=openai:gpt-4o", ["openai", "ollama"]
    )

    assert routes == {
        "gpt-4o-mini": [Target("openai", "gpt-4o-mini"), Target("ollama", "llama3.1:8b")],
        "big": [Target("openai", "gpt-4o")],
    }


@pytest.mark.parametrize("value", ["m=nowhere:x", "m=openai", "m=", "=openai:x"])
def test_bad_fallbacks_are_refused(value):
    with pytest.raises(ProviderConfigError):
        fallbacks_parse(value, ["openai"])
