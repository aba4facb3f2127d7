"""Routes of the payments app, mounted under /api/v1/."""

from rest_framework.routers import SimpleRouter

from payments.api.views import PaymentViewSet

router = SimpleRouter(trailing_slash=False)
router.register("payments", PaymentViewSet, basename="payment")

urlpatterns = router.urls
