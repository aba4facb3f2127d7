"""Routes of the notifications app, mounted under /api/v1/."""

from django.urls import path
from rest_framework.routers import SimpleRouter

from .api import views

router = SimpleRouter(trailing_slash=False)
router.register("notifications", views.NotificationViewSet, basename="notification")

urlpatterns = [
    path("notification-settings", views.NotificationSettingsView.as_view(), name="notification-settings"),
    *router.urls,
]
