"""Routes of the audit app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from .api.views import AuditLogViewSet

router = SimpleRouter(trailing_slash=False)
router.register("audit-logs", AuditLogViewSet, basename="audit-log")

urlpatterns = router.urls
