"""The test hooks: /_control overrides, /_stats counters, and /v1/models."""

from __future__ import annotations

from dataclasses import asdict

from aiohttp import web

from llm.fake_server.request_body import bad_request, json_object
from llm.fake_server.state import MODEL_FAILURES, STATE


async def control(request: web.Request) -> web.Response:
    """POST /_control: the next `count` chat requests (default 1) use these settings."""
    body = await json_object(request)
    count = body.pop("count", 1)
    if not isinstance(count, int) or count < 0:
        raise bad_request("'count' must be a non-negative integer")
    try:
        settings = request.app[STATE].set_override(body, count)
    except ValueError as exc:
        raise bad_request(str(exc)) from exc
    return web.json_response({"settings": asdict(settings), "count": count})


async def control_reset(request: web.Request) -> web.Response:
    """POST /_control/reset: drop any override; every request uses the defaults."""
    state = request.app[STATE]
    state.clear_override()
    return web.json_response({"settings": asdict(state.defaults), "count": 0})


async def control_moderation(request: web.Request) -> web.Response:
    """POST /_control/moderation `{"flag": ["word", ...]}`: /v1/moderations flags these."""
    words = (await json_object(request)).get("flag")
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        raise bad_request("'flag' must be a list of strings")
    request.app[STATE].flag_words = frozenset(w.lower() for w in words)
    return web.json_response({"flag": sorted(request.app[STATE].flag_words)})


async def stats(request: web.Request) -> web.Response:
    """GET /_stats: request, stream and token counters since the server started."""
    return web.json_response(asdict(request.app[STATE].stats))


async def models(request: web.Request) -> web.Response:
    """GET /v1/models: any model name works; these are the ones worth knowing."""
    names = ["fake-model", "fake-embedding", *MODEL_FAILURES]
    data = [{"id": n, "object": "model", "created": 0, "owned_by": "fake"} for n in names]
    return web.json_response({"object": "list", "data": data})
