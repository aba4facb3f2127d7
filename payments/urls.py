"""Routes of the payments app, mounted under /api/v1/ (before webhooks.urls: the Authorize.Net
inbound paths under webhooks/authorize-net come first)."""

from rest_framework.routers import SimpleRouter

from payments.api.views import PaymentViewSet
from payments.inbound.urls import urlpatterns as inbound_urlpatterns

router = SimpleRouter(trailing_slash=False)
router.register("payments", PaymentViewSet, basename="payment")

urlpatterns = [*inbound_urlpatterns, *router.urls]
