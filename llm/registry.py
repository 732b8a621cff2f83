"""The configured providers, built once per process from Django settings."""

from __future__ import annotations

import functools

from django.conf import settings
from django.test.signals import setting_changed

from llm.chat import ChatProvider
from llm.offline import OfflineProvider
from llm.openai_compatible import OpenAICompatibleProvider

OFFLINE_MODEL = "offline"
DEFAULT_OPENAI_BASE_URL = "https://api.openai.com/v1"


def chat_is_configured() -> bool:
    return bool(settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY or settings.LOCAL_LLM)


@functools.cache
def chat_provider() -> ChatProvider:
    """The chat provider: OpenAI-compatible when configured, else the offline provider."""
    if not chat_is_configured():
        return OfflineProvider()
    if settings.LOCAL_LLM and not (settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY):
        from llm.local_llama import LocalLlamaProvider

        return LocalLlamaProvider()
    return OpenAICompatibleProvider(
        settings.OPENAI_BASE_URL or DEFAULT_OPENAI_BASE_URL,
        settings.OPENAI_API_KEY or None,
        read_timeout=settings.CHAT_PROVIDER_READ_TIMEOUT,
    )


def chat_models() -> list[str]:
    """Model names users may pick, the default first."""
    if not chat_is_configured():
        return [OFFLINE_MODEL]
    if settings.LOCAL_LLM and not (settings.OPENAI_BASE_URL or settings.OPENAI_API_KEY):
        from llm.local_llama import MODEL_NAME

        return [MODEL_NAME]
    return list(settings.CHAT_MODELS)


def reset_on_settings_change(*, setting: str, **kwargs: object) -> None:
    if setting in {"OPENAI_BASE_URL", "OPENAI_API_KEY", "CHAT_PROVIDER_READ_TIMEOUT", "LOCAL_LLM"}:
        chat_provider.cache_clear()


setting_changed.connect(reset_on_settings_change)
