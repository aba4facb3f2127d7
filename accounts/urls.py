"""Routes of the accounts app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from accounts.api.views import APIKeyViewSet, AuthViewSet, TokenViewSet

router = SimpleRouter(trailing_slash=False)
router.register("auth/api-keys", APIKeyViewSet, basename="api-key")
router.register("auth/tokens", TokenViewSet, basename="token")
router.register("auth", AuthViewSet, basename="auth")

urlpatterns = router.urls
