"""System endpoints: health probes and the API version (CONTRACT section 8)."""

from __future__ import annotations

import platform
from typing import Any

import django
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_safe
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .exceptions import NotFound, ServiceUnavailable
from .health import component_reports, run_checks
from .replicas import replicas_health


class _PublicView(APIView):
    authentication_classes: list = []
    permission_classes = [AllowAny]
    throttle_classes: list = []


@extend_schema(tags=["system"], summary="Basic health check", responses={200: OpenApiTypes.OBJECT})
class HealthView(_PublicView):
    def get(self, request):
        return Response({"status": "ok", "version": settings.VERSION})


@extend_schema(tags=["system"], summary="Liveness probe: the process answers", responses={200: OpenApiTypes.OBJECT})
class LivenessView(_PublicView):
    def get(self, request):
        return Response({"status": "ok"})


@extend_schema(
    tags=["system"],
    summary="Readiness probe: database, cache and broker answer",
    responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
)
class ReadinessView(_PublicView):
    def get(self, request):
        results = run_checks()
        failed = [r for r in results if not r.ok]
        if failed:
            raise ServiceUnavailable(
                f"Not ready: {', '.join(r.name for r in failed)} unavailable.",
                details={r.name: ("ok" if r.ok else "unavailable") for r in results},
            )
        return Response({"status": "ready", "checks": {r.name: "ok" for r in results}})


@extend_schema(
    tags=["system"],
    summary="Each component's status and latency",
    responses={200: OpenApiTypes.OBJECT, 503: OpenApiTypes.OBJECT},
)
class DetailedHealthView(_PublicView):
    def get(self, request):
        results = run_checks()
        components: dict[str, dict[str, Any]] = {
            r.name: {"status": "ok" if r.ok else "unavailable", "latency_ms": r.latency_ms, "error": r.error}
            for r in results
        }
        components.update(component_reports())  # the apps' own (payments: the processor's circuit)
        components["scheduler"] = _scheduler_status()
        replicas = replicas_health()
        if replicas:
            # Reads fall back to the primary when a replica is down or lagging: reported, never unhealthy.
            all_ok = all(r["status"] == "ok" for r in replicas.values())
            components["database_replicas"] = {"status": "ok" if all_ok else "degraded", "replicas": replicas}
        healthy = all(r.ok for r in results)
        # A stale scheduler degrades the reported status but not the HTTP status: web instances keep
        # serving (and /health/ready stays 200) while the scheduler is restarted.
        degraded = not healthy or components["scheduler"]["status"] == "stale"
        body = {
            "status": "degraded" if degraded else "ok",
            "version": settings.VERSION,
            "components": components,
            "runtime": {"python": platform.python_version(), "django": django.get_version()},
            "celery": {"eager": bool(settings.CELERY_TASK_ALWAYS_EAGER)},
        }
        return Response(body, status=200 if healthy else 503)


def _scheduler_status() -> dict:
    """The beat scheduler's heartbeat: ``ok``, ``stale`` (older than SCHEDULER_HEARTBEAT_STALE_SECONDS),
    ``not_seen`` (no scheduler ever beat against this database) or ``unknown`` (it could not be read)."""
    from django.db import DatabaseError

    from .heartbeat import heartbeat_status

    try:
        status = heartbeat_status()
    except DatabaseError:
        return {"status": "unknown"}
    return {
        "status": status.status,
        "last_beat_at": status.last_beat_at.isoformat().replace("+00:00", "Z") if status.last_beat_at else None,
        "last_beat_age_seconds": status.age_seconds,
        "stale_after_seconds": status.stale_after_seconds,
    }


@extend_schema(tags=["system"], summary="API version", responses={200: OpenApiTypes.OBJECT})
class VersionView(_PublicView):
    def get(self, request):
        return Response({"version": settings.VERSION, "api_version": settings.API_VERSION})


@require_safe
def landing(request: HttpRequest) -> HttpResponse:
    """``GET /``: a small page linking the documentation, Swagger UI, the admin and health."""
    context = {"version": settings.VERSION, "api_version": settings.API_VERSION, "debug": settings.DEBUG}
    return render(request, "core/landing.html", context)


@csrf_exempt  # a JSON 404 for every method: no session-CSRF HTML page on unrouted API paths
def api_not_found(request: HttpRequest, exception=None, *args, **kwargs):
    from .middleware import json_error_response

    return json_error_response(request, 404, NotFound.code, "No API endpoint matches this path.")


def api_server_error(request: HttpRequest, *args, **kwargs):
    from .middleware import json_error_response

    return json_error_response(request, 500, "internal_error", "An unexpected error occurred.")
