"""POST /v1/embeddings: deterministic stand-in vectors from a hashed bag of words.

Every word adds a few signed unit entries at positions chosen by its hash, and the sum
is scaled to unit length. The same text always gives the same vector, and texts that
share words have a positive cosine similarity, so retrieval tests behave sensibly
without a model.
"""

from __future__ import annotations

import base64
import hashlib
import math
import re
import struct
from typing import Any

from aiohttp import web

from llm.fake_server.request_body import bad_request, json_object
from llm.fake_server.state import STATE
from llm.fake_server.usage import word_count

DEFAULT_DIMENSIONS = 384
_MAX_DIMENSIONS = 16384
_WORD = re.compile(r"\w+")
_ENTRIES_PER_WORD = 8


async def embeddings(request: web.Request) -> web.Response:
    """Embed a string or a list of strings; floats, or base64 like the openai SDK asks."""
    request.app[STATE].stats.embedding_requests += 1
    body = await json_object(request)
    texts = _inputs(body.get("input"))
    dimensions = body.get("dimensions", DEFAULT_DIMENSIONS)
    if not isinstance(dimensions, int) or not 1 <= dimensions <= _MAX_DIMENSIONS:
        raise bad_request(f"'dimensions' must be an integer from 1 to {_MAX_DIMENSIONS}")
    as_base64 = body.get("encoding_format") == "base64"
    vectors = (embedding_vector(text, dimensions) for text in texts)
    data = [
        {"object": "embedding", "index": i, "embedding": _encoded(vector, as_base64)}
        for i, vector in enumerate(vectors)
    ]
    tokens = sum(word_count(text) for text in texts)
    usage = {"prompt_tokens": tokens, "total_tokens": tokens}
    model = body.get("model") or "fake-embedding"
    return web.json_response({"object": "list", "data": data, "model": model, "usage": usage})


def embedding_vector(text: str, dimensions: int) -> list[float]:
    """A unit-norm vector of `dimensions` floats for `text`."""
    values = [0.0] * dimensions
    for word in _WORD.findall(text.lower()) or [text]:
        for index, sign in _word_entries(word, dimensions):
            values[index] += sign
    norm = math.sqrt(sum(v * v for v in values))
    if norm == 0.0:  # every entry cancelled out: fall back to one hashed axis
        values[_hash_int(text) % dimensions] = 1.0
        return values
    return [v / norm for v in values]


def _inputs(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return value
    raise bad_request("'input' must be a string or a non-empty list of strings")


def _encoded(vector: list[float], as_base64: bool) -> list[float] | str:
    if not as_base64:
        return vector
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def _word_entries(word: str, dimensions: int) -> list[tuple[int, float]]:
    digest = hashlib.blake2b(word.encode(), digest_size=4 * _ENTRIES_PER_WORD).digest()
    entries = []
    for offset in range(0, len(digest), 4):
        index = int.from_bytes(digest[offset : offset + 3], "little") % dimensions
        entries.append((index, 1.0 if digest[offset + 3] & 1 else -1.0))
    return entries


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest())
