from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from chatbot.health import readiness


@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness: the process answers. No dependency is touched."""
    return JsonResponse({"status": "ok"})


@require_GET
@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Readiness: database, Redis and the Celery broker answer; 503 when one does not."""
    results = readiness()
    ready = all(result.ok for result in results)
    checks = {
        r.name: {"ok": r.ok, "ms": r.ms, **({"error": r.error} if r.error else {})} for r in results
    }
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )
