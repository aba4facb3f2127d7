"""Routes of the subscriptions app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

router = SimpleRouter(trailing_slash=False)

urlpatterns = router.urls
