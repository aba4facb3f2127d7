"""Routes of the webhooks app, mounted under /api/v1/.

The Authorize.Net paths come before the router so ``webhooks/{id}`` never captures them.
"""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import views

router = SimpleRouter(trailing_slash=False)
router.register("webhooks", views.WebhookEndpointViewSet, basename="webhook-endpoint")
router.register("events", views.EventViewSet, basename="event")

urlpatterns = [
    path("webhooks/authorize-net", views.AuthorizeNetWebhookView.as_view(), name="webhook-authorize-net"),
    path("webhooks/authorize-net/test", views.AuthorizeNetTestView.as_view(), name="webhook-authorize-net-test"),
    path(
        "webhooks/authorize-net/events",
        views.AuthorizeNetEventTypesView.as_view(),
        name="webhook-authorize-net-events",
    ),
    path(
        "webhooks/authorize-net/replay/<str:webhook_id>",
        views.AuthorizeNetReplayView.as_view(),
        name="webhook-authorize-net-replay",
    ),
    *router.urls,
]
