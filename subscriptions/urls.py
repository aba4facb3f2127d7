"""Routes of the subscriptions app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from .api.views import SubscriptionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("subscriptions", SubscriptionViewSet, basename="subscription")

urlpatterns = router.urls
