"""Pages of history: the public share page, continuing from it, and "Your data"."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET, require_POST

from billing.ratelimit import client_ip, rate_limit_hit
from conversations import shares
from conversations.exceptions import NotFound

# Nothing on a shared page loads from elsewhere or runs script; the token never leaves in a
# Referer; search engines are asked not to index it.
SHARE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; form-action 'self'; base-uri 'none';"
        " frame-ancestors 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Robots-Tag": "noindex, nofollow",
    "Cache-Control": "private, no-store",
}


def share_headers(response: HttpResponse) -> HttpResponse:
    for name, value in SHARE_HEADERS.items():
        response[name] = value
    return response


def share_not_found() -> HttpResponse:
    """One body and status for unknown, revoked, expired and disabled links alike."""
    return share_headers(HttpResponse(render_to_string("conversations/share_404.html"), status=404))


def share_rate_limited(request: HttpRequest) -> HttpResponse | None:
    decision = rate_limit_hit(
        key=f"share-page:{client_ip(request)}", rate_per_minute=settings.ANON_REQUESTS_PER_MINUTE
    )
    if decision.allowed:
        return None
    response = HttpResponse("Too many requests. Try again shortly.\n", status=429)
    response["Retry-After"] = str(max(1, int(decision.retry_after + 0.999)))
    response["Content-Type"] = "text/plain; charset=utf-8"
    return response


@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    """A shared conversation, readable without logging in."""
    limited = share_rate_limited(request)
    if limited is not None:
        return limited
    try:
        shared = shares.share_open(token=token)
    except NotFound:
        return share_not_found()
    context = {"shared": shared, "token": token}
    return share_headers(render(request, "conversations/share.html", context))


@require_POST
@login_required
def share_continue_page(request: HttpRequest, token: str) -> HttpResponse:
    """Copy the shared conversation into the viewer's own and open it in the chat."""
    limited = share_rate_limited(request)
    if limited is not None:
        return limited
    try:
        conversation = shares.share_continue(user=request.user, token=token)
    except NotFound:
        return share_not_found()
    return HttpResponseRedirect(f"/?c={conversation.pk}")


@login_required
@ensure_csrf_cookie
def history_page(request: HttpRequest) -> HttpResponse:
    """Trash, share links, export and account deletion (the page drives the REST API)."""
    context = {"api": "/api/v1", "trash_days": settings.TRASH_RETENTION_DAYS}
    return render(request, "conversations/history.html", context)
