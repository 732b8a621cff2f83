"""Token estimates for budgeting a prompt when no tokenizer for the model is at hand.

The estimate errs high (about 3.5 characters per token for English, 1 per CJK character)
so a context assembled under a budget fits the model's real window.
"""

from __future__ import annotations

import math

CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, as in OpenAI's chat format


def token_estimate(text: str) -> int:
    """A conservative token count for ``text``."""
    wide = sum(1 for char in text if ord(char) > 0x2E80)
    return math.ceil((len(text) - wide) / CHARS_PER_TOKEN) + wide


def message_token_estimate(content: str) -> int:
    return token_estimate(content) + MESSAGE_OVERHEAD_TOKENS
