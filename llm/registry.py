"""The configured providers, built once per process from Django settings."""

from __future__ import annotations

import functools
from pathlib import Path

from django.conf import settings
from django.test.signals import setting_changed

from llm.chat import ChatProvider
from llm.circuit_breaker import BreakerConfig, CircuitBreaker
from llm.failover import FailoverConfig, FailoverProvider
from llm.moderation import DEFAULT_RULES_FILE, Moderator, OpenAIModerator, RuleModerator
from llm.offline import OfflineProvider
from llm.openai_compatible import OpenAICompatibleProvider
from llm.provider_config import ProviderSpec, fallbacks_parse, providers_parse

OFFLINE_MODEL = "offline"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def chat_is_configured() -> bool:
    return bool(
        settings.CHAT_PROVIDERS
        or settings.OPENAI_BASE_URL
        or settings.OPENAI_API_KEY
        or settings.LOCAL_LLM
    )


@functools.cache
def chat_provider() -> ChatProvider:
    """The chat provider: OpenAI-compatible when configured, else the offline provider."""
    if not chat_is_configured():
        return OfflineProvider()
    if settings.LOCAL_LLM and not _servers_configured():
        from llm.local_llama import LocalLlamaProvider

        return LocalLlamaProvider()
    return failover_provider()


def _servers_configured() -> bool:
    return bool(settings.CHAT_PROVIDERS or settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY)


def failover_provider() -> FailoverProvider:
    """Every configured server behind failover and the shared circuit breakers.

    Without `CHAT_PROVIDERS` there is one provider, "openai", at `OPENAI_BASE_URL`.
    """
    specs = providers_parse(settings.CHAT_PROVIDERS)
    providers: dict[str, ChatProvider]
    if specs:
        providers = {spec.name: _server(spec, spec.api_key()) for spec in specs}
    else:
        default = ProviderSpec("openai", settings.OPENAI_BASE_URL or DEFAULT_OPENAI_BASE_URL)
        providers = {default.name: _server(default, settings.OPENAI_API_KEY or None)}
    return FailoverProvider(
        providers,
        fallbacks_parse(settings.CHAT_FALLBACKS, list(providers)),
        breaker=CircuitBreaker(settings.REDIS_URL, breaker_config()),
        config=FailoverConfig(
            first_token_timeout=settings.CHAT_FIRST_TOKEN_TIMEOUT,
            retry_after_max=settings.CHAT_RETRY_AFTER_MAX,
        ),
    )


def breaker_config() -> BreakerConfig:
    return BreakerConfig(
        threshold=settings.CHAT_BREAKER_THRESHOLD,
        window_s=settings.CHAT_BREAKER_WINDOW,
        cooldown_s=settings.CHAT_BREAKER_COOLDOWN,
        probe_ttl_s=settings.CHAT_FIRST_TOKEN_TIMEOUT + settings.CHAT_BREAKER_COOLDOWN,
    )


def _server(spec: ProviderSpec, api_key: str | None) -> OpenAICompatibleProvider:
    return OpenAICompatibleProvider(
        spec.base_url, api_key, name=spec.name, read_timeout=settings.CHAT_PROVIDER_READ_TIMEOUT
    )


def chat_models() -> list[str]:
    """Model names users may pick, the default first."""
    if not chat_is_configured():
        return [OFFLINE_MODEL]
    if settings.LOCAL_LLM and not _servers_configured():
        from llm.local_llama import MODEL_NAME

        return [MODEL_NAME]
    return list(settings.CHAT_MODELS)


@functools.cache
def moderator() -> Moderator | None:
    """The configured moderator, or None when moderation is off."""
    if settings.MODERATION == "off":
        return None
    if settings.MODERATION == "openai":
        return OpenAIModerator(
            settings.MODERATION_BASE_URL,
            settings.MODERATION_API_KEY or None,
            model=settings.MODERATION_MODEL,
        )
    rules_file = settings.MODERATION_RULES_FILE
    return RuleModerator.from_file(Path(rules_file) if rules_file else DEFAULT_RULES_FILE)


PROVIDER_SETTINGS = frozenset(
    {
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "CHAT_PROVIDER_READ_TIMEOUT",
        "LOCAL_LLM",
        "CHAT_PROVIDERS",
        "CHAT_FALLBACKS",
        "CHAT_FIRST_TOKEN_TIMEOUT",
        "CHAT_RETRY_AFTER_MAX",
        "CHAT_BREAKER_THRESHOLD",
        "CHAT_BREAKER_WINDOW",
        "CHAT_BREAKER_COOLDOWN",
        "REDIS_URL",
    }
)


def reset_on_settings_change(*, setting: str, **kwargs: object) -> None:
    if setting in PROVIDER_SETTINGS:
        chat_provider.cache_clear()
    if setting.startswith("MODERATION"):
        moderator.cache_clear()


setting_changed.connect(reset_on_settings_change)
