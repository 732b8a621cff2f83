"""Reading JSON request bodies, and OpenAI-style 400 errors."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 error."""
    try:
        body = await request.json()
    except ValueError as exc:
        raise bad_request("the body is not valid JSON") from exc
    if not isinstance(body, dict):
        raise bad_request("the body must be a JSON object")
    return body


def bad_request(message: str) -> web.HTTPBadRequest:
    """A 400 response shaped like OpenAI's `{"error": {...}}`."""
    error = {"message": message, "type": "invalid_request_error", "code": None}
    return web.HTTPBadRequest(text=json.dumps({"error": error}), content_type="application/json")
