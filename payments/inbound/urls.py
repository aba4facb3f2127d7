"""Routes of the Authorize.Net inbound path, mounted under /api/v1/ by ``payments.urls`` (which comes
before ``webhooks.urls``, so the outbox's ``webhooks/{id}`` routes never capture them)."""

from django.urls import path

from .api import views

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
]
