"""A Django system check: the provider and moderation settings can be read (`manage.py check`,
and every start), so a typo fails the deploy instead of the first chat turn."""

from __future__ import annotations

from typing import Any

from django.core import checks

from llm.moderation import ModerationRuleError
from llm.provider_config import ProviderConfigError


def llm_settings_check(**kwargs: Any) -> list[checks.CheckMessage]:
    """Build the chat provider and the moderator once; report what cannot be read."""
    from llm.registry import chat_provider, moderator

    errors: list[checks.CheckMessage] = []
    try:
        chat_provider()
    except ProviderConfigError as exc:
        errors.append(checks.Error(str(exc), id="llm.E001"))
    try:
        moderator()
    except (ModerationRuleError, OSError) as exc:
        errors.append(checks.Error(f"MODERATION_RULES_FILE: {exc}", id="llm.E002"))
    return errors
