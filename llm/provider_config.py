"""Reading the provider and fallback settings (`CHAT_PROVIDERS`, `CHAT_FALLBACKS`).

    CHAT_PROVIDERS="openai=https://api.openai.com/v1|OPENAI_API_KEY, vllm=http://gpu1:8000/v1"
    CHAT_FALLBACKS="gpt-4o-mini=openai:gpt-4o-mini,vllm:llama-3.1-8b; gpt-4o=openai:gpt-4o"

A provider is `name=base_url`, optionally `|KEY_ENV`: the NAME of the environment variable that
holds its key (never the key itself; `KEY_ENV_FILE` works too). A fallback line is
`model=provider:model,provider:model,...`, tried in that order. A model with no line goes to the
first provider under its own name.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ProviderConfigError(ValueError):
    """The provider settings cannot be read; the message says which part and why."""


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    name: str
    base_url: str
    key_env: str = ""

    def api_key(self) -> str | None:
        """The key from the environment variable named `key_env` (or its `_FILE`)."""
        if not self.key_env:
            return None
        file_path = os.environ.get(f"{self.key_env}_FILE")
        if file_path:
            return Path(file_path).read_text().strip() or None
        return os.environ.get(self.key_env) or None


@dataclass(frozen=True, slots=True)
class Target:
    """One place a model can be answered: a provider and the model name it knows."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def providers_parse(value: str) -> list[ProviderSpec]:
    """Parse `CHAT_PROVIDERS`; the order is kept (the first is the default)."""
    specs = [_provider(item.strip()) for item in value.split(",") if item.strip()]
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ProviderConfigError(f"CHAT_PROVIDERS names a provider twice: {names}")
    return specs


def fallbacks_parse(value: str, providers: list[str]) -> dict[str, list[Target]]:
    """Parse `CHAT_FALLBACKS`, checking that every target names a known provider."""
    routes: dict[str, list[Target]] = {}
    for line in (part.strip() for part in value.split(";")):
        if not line:
            continue
        model, sep, targets = line.partition("=")
        if not sep or not model.strip() or not targets.strip():
            raise ProviderConfigError(f"CHAT_FALLBACKS: {line!r} is not model=provider:model,...")
        routes[model.strip()] = [_target(item.strip(), providers) for item in targets.split(",")]
    return routes


def _provider(item: str) -> ProviderSpec:
    name, sep, rest = item.partition("=")
    url, _, key_env = rest.partition("|")
    name, url, key_env = name.strip(), url.strip(), key_env.strip()
    if not sep or not _NAME.match(name):
        raise ProviderConfigError(f"CHAT_PROVIDERS: {item!r} is not name=base_url[|KEY_ENV]")
    if not url.startswith(("http://", "https://")):
        raise ProviderConfigError(f"CHAT_PROVIDERS: {name}'s base URL must start with http(s)://")
    if key_env and not _ENV_NAME.match(key_env):
        raise ProviderConfigError(
            f"CHAT_PROVIDERS: {name}'s key must be given as the name of an environment variable"
        )
    return ProviderSpec(name, url, key_env)


def _target(item: str, providers: list[str]) -> Target:
    provider, sep, model = item.partition(":")  # model names may contain ":" (Ollama tags)
    if not sep or not model.strip():
        raise ProviderConfigError(f"CHAT_FALLBACKS: {item!r} is not provider:model")
    if provider.strip() not in providers:
        raise ProviderConfigError(f"CHAT_FALLBACKS: unknown provider {provider.strip()!r}")
    return Target(provider.strip(), model.strip())
