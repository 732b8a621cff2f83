"""POST /v1/moderations: flags any input containing one of the server's flag words."""

from __future__ import annotations

from aiohttp import web

from llm.fake_server.request_body import bad_request, json_object
from llm.fake_server.state import STATE

FLAG_CATEGORY = "harassment"


async def moderations(request: web.Request) -> web.Response:
    """OpenAI's response shape; a text is flagged (as harassment) when it has a flag word."""
    state = request.app[STATE]
    state.stats.moderation_requests += 1
    body = await json_object(request)
    texts = body.get("input")
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        raise bad_request("'input' must be a string or a list of strings")
    results = [_result(text, state.flag_words) for text in texts]
    model = body.get("model") or "fake-moderation"
    return web.json_response({"id": "modr-fake", "model": model, "results": results})


def _result(text: str, flag_words: frozenset[str]) -> dict[str, object]:
    lowered = text.lower()
    flagged = any(word in lowered for word in flag_words)
    return {
        "flagged": flagged,
        "categories": {FLAG_CATEGORY: flagged, "violence": False},
        "category_scores": {FLAG_CATEGORY: 0.99 if flagged else 0.01, "violence": 0.01},
    }
