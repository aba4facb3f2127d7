"""One permission class for every endpoint: the view declares its read and write scopes."""

from __future__ import annotations

from rest_framework.permissions import SAFE_METHODS, BasePermission

from core.exceptions import AuthenticationFailed, PermissionDenied

from .principal import MerchantPrincipal


class HasScope(BasePermission):
    """Grants when the merchant credential holds the scope the view asks for.

    A view sets ``read_scope`` (GET/HEAD/OPTIONS) and ``write_scope`` (everything else), and may map
    individual actions with ``action_scopes = {"refund": "payments:write"}``. A view with no scope
    at all is closed: forgetting to declare one never opens an endpoint.
    """

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, MerchantPrincipal) or not principal.is_authenticated:
            raise AuthenticationFailed("Authentication credentials were not provided.")
        scope = self.required_scope(request, view)
        if scope is None:
            raise PermissionDenied("This endpoint is not available to merchant credentials.")
        if not principal.has_scope(scope):
            raise PermissionDenied(f"This credential lacks the '{scope}' permission.", details={"required": scope})
        return True

    @staticmethod
    def required_scope(request, view) -> str | None:
        action = getattr(view, "action", None)
        action_scopes = getattr(view, "action_scopes", None) or {}
        if action and action in action_scopes:
            return action_scopes[action]
        if request.method in SAFE_METHODS:
            return getattr(view, "read_scope", None)
        return getattr(view, "write_scope", None)


class IsMerchantPrincipal(BasePermission):
    """Any authenticated merchant credential, whatever its scopes (``me``, ``permissions/check``)."""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if not isinstance(principal, MerchantPrincipal) or not principal.is_authenticated:
            raise AuthenticationFailed("Authentication credentials were not provided.")
        return True


class IsStaffOrHasScope(HasScope):
    """A staff user's token, or a credential holding the view's scope (``cleanup``)."""

    def has_permission(self, request, view) -> bool:
        principal = request.user
        if isinstance(principal, MerchantPrincipal) and principal.is_authenticated and principal.is_staff:
            return True
        return super().has_permission(request, view)
