"""The one NinjaAPI, mounted at /api/v1/; each app adds its router here."""

from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI
from ninja.errors import ValidationError

from conversations.api import router as conversations_router
from conversations.exceptions import ChatError
from knowledge.api import router as knowledge_router
from knowledge.exceptions import KnowledgeError

api = NinjaAPI(title="chatbot API", version="1", urls_namespace="api")
api.add_router("/", conversations_router)
api.add_router("/", knowledge_router)


@api.exception_handler(ChatError)
@api.exception_handler(KnowledgeError)
def chat_error(request: HttpRequest, exc: ChatError | KnowledgeError) -> HttpResponse:
    """Domain errors become ``{"code", "detail"}`` with their HTTP status."""
    response = api.create_response(
        request, {"code": exc.code, "detail": exc.detail}, status=exc.status
    )
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response["Retry-After"] = str(max(1, round(retry_after)))
    return response


@api.exception_handler(ValidationError)
def validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    """Malformed input is a 400 in the same shape as every other error, with the details."""
    first = exc.errors[0] if exc.errors else {}
    where = ".".join(str(part) for part in first.get("loc", ()))
    detail = f"{where}: {first.get('msg', 'invalid input')}" if where else "invalid input"
    body = {"code": "invalid", "detail": detail, "errors": exc.errors}
    return api.create_response(request, body, status=400)
