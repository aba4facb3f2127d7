"""Routes of the webhooks app, mounted under /api/v1/.

The Authorize.Net paths (``webhooks/authorize-net...``) belong to ``payments.inbound.urls``, mounted
before these by ``payments.urls`` so ``webhooks/{id}`` never captures them.
"""

from rest_framework.routers import SimpleRouter

from .api import views

router = SimpleRouter(trailing_slash=False)
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", views.EventViewSet, basename="event")

urlpatterns = router.urls
