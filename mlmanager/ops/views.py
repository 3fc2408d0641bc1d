"""Probes and metrics for load balancers and Prometheus: no login, JSON or text, never cached.

/healthz  the process answers (no database access): restart it if this fails.
/readyz   its dependencies answer (ops.readiness): send it traffic only while this is 200.
/metrics  Prometheus text (ops.metrics), behind MLMANAGER_METRICS_TOKEN when it is set.
"""

from __future__ import annotations

import hmac

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseNotFound, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe
from prometheus_client import CONTENT_TYPE_LATEST

from mlmanager.ops.metrics import exposition
from mlmanager.ops.readiness import readiness


@never_cache
@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "alive"})


@never_cache
@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    result = readiness()
    return JsonResponse(
        {"status": "ready" if result.ready else "unavailable", "checks": result.checks},
        status=200 if result.ready else 503,
    )


@never_cache
@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.MLMANAGER_METRICS_TOKEN
    if token:
        sent = request.headers.get("Authorization", "")
        # Constant-time, so the time taken does not tell how much of a guess was right; as
        # bytes, because compare_digest refuses text that is not ASCII (a 500).
        if not hmac.compare_digest(sent.encode(), f"Bearer {token}".encode()):
            response = HttpResponse("A bearer token is required.\n", status=401)
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
    elif not settings.MLMANAGER_METRICS_OPEN:
        # Production without a token: as if there were no such page, rather than publishing
        # request rates and job counts to anyone.
        return HttpResponseNotFound()
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
