"""The one NinjaAPI, mounted at /api/v1/; each app adds its router here."""

import math

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError

from billing.api import router as billing_router
from chatbot.errors import DomainError
from conversations.api import router as conversations_router
from conversations.history_api import router as history_router
from knowledge.api import router as knowledge_router

api = NinjaAPI(title="chatbot API", version="1", urls_namespace="api")
api.add_router("/", conversations_router)
api.add_router("/", billing_router)
api.add_router("/", history_router)
api.add_router("/", knowledge_router)


@api.exception_handler(DomainError)
def chat_error(request: HttpRequest, exc: DomainError) -> HttpResponse:
    """Domain errors (every app's) become ``{"code", "detail", ...}`` with their HTTP status."""
    body = {"code": exc.code, "detail": exc.detail, **exc.extra()}
    response = api.create_response(request, body, status=exc.status)
    if exc.retry_after is not None:
        response["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Malformed input is a 400 in the same shape as every other error, with the details."""
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input"
    body = {"code": "invalid", "detail": detail, "errors": exc.errors}
    return api.create_response(request, body, status=400)
