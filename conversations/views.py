"""Server-rendered pages of the chat."""

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

from conversations.metering import models_for


@login_required
@ensure_csrf_cookie  # the page's fetch calls send it back as X-CSRFToken
def chat_page(request: HttpRequest) -> HttpResponse:
    models = models_for(request.user)
    return render(
        request,
        "conversations/chat.html",
        {
            "conversations_api": "/api/v1/conversations",
            "ws_base": "/ws/conversations/",
            "models": models,
            "default_model": models[0] if models else "",
        },
    )
