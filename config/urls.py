"""URL map: the API under /api/v1/, system endpoints, schema/docs, metrics and the admin."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views import defaults
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core import views as core_views

api_v1 = [
    path("version", core_views.VersionView.as_view(), name="api-version"),
    # Each app owns its routes (DRF routers without trailing slashes): auth/..., payments...,
    # webhooks... and events..., subscriptions..., audit-logs...
    path("", include("accounts.urls")),
    path("", include("payments.urls")),
    path("", include("webhooks.urls")),
    path("", include("subscriptions.urls")),
    path("", include("audit.urls")),
    path("", include("notifications.urls")),
]

urlpatterns = [
    path("", core_views.landing, name="landing"),
    path("health", core_views.HealthView.as_view(), name="health"),
    path("health/live", core_views.LivenessView.as_view(), name="health-live"),
    path("health/ready", core_views.ReadinessView.as_view(), name="health-ready"),
    path("health/detailed", core_views.DetailedHealthView.as_view(), name="health-detailed"),
    path("", include("django_prometheus.urls")),
    path("api/v1/", include(api_v1)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("admin/", admin.site.urls),
    # Anything else under /api/ is a JSON 404, even with DEBUG on (never Django's HTML page).
    re_path(r"^api/", core_views.api_not_found),
]


def handler404(request, exception):
    if request.path.startswith("/api/"):
        return core_views.api_not_found(request, exception)
    return defaults.page_not_found(request, exception)


def handler500(request):
    if request.path.startswith("/api/"):
        return core_views.api_server_error(request)
    return defaults.server_error(request)
