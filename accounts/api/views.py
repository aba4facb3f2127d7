"""/api/v1/auth/: API keys, JWTs, permission checks, ``me`` and ``cleanup`` (CONTRACT section 3)."""

from __future__ import annotations

import hashlib

from django.conf import settings
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import AllowAny
from rest_framework.response import Response

from accounts import jwt, ratelimit, scopes, selectors, services
from accounts.ipfilter import client_ip
from accounts.models import APIKey
from accounts.permissions import IsMerchantPrincipal, IsStaffOrHasScope
from accounts.principal import request_principal
from core.exceptions import NotFound, PermissionDenied, RateLimited
from core.idempotency import OPENAPI_PARAMETER, idempotent

from . import serializers as s

KEY_LOOKUP = OpenApiParameter(
    "id", OpenApiTypes.STR, OpenApiParameter.PATH, description="the key's id (UUID) or its key_id (ek_test_...)"
)


def _creator_limits(principal) -> dict[str, int]:
    """The highest limits a key created or changed by this credential may have: an API key's (or a JWT
    minted from it) own limits; a merchant user's login: the merchant's aggregate limits."""
    return dict(principal.limits if principal.api_key_id else principal.merchant_limits)


@extend_schema_view(
    list=extend_schema(summary="List the merchant's API keys", responses=s.APIKeySerializer(many=True)),
    retrieve=extend_schema(summary="Get an API key (never its secret)", parameters=[KEY_LOOKUP]),
    create=extend_schema(
        summary="Create an API key (the secret is in this response only)",
        request=s.APIKeyCreateSerializer,
        parameters=[OPENAPI_PARAMETER],
        responses={201: s.APIKeyCreatedSerializer},
    ),
    update=extend_schema(
        summary="Update an API key",
        parameters=[KEY_LOOKUP],
        request=s.APIKeyUpdateSerializer,
        responses=s.APIKeySerializer,
    ),
    partial_update=extend_schema(
        summary="Update some fields of an API key",
        parameters=[KEY_LOOKUP],
        request=s.APIKeyUpdateSerializer,
        responses=s.APIKeySerializer,
    ),
    destroy=extend_schema(
        summary="Revoke an API key at once (answers 200 with the revoked key)",
        parameters=[KEY_LOOKUP],
        responses={200: s.APIKeySerializer},
    ),
)
class APIKeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """A merchant's API keys. Another merchant's key, and a malformed id, are 404."""

    read_scope = "api_keys:read"
    write_scope = "api_keys:write"
    serializer_class = s.APIKeySerializer
    filterset_fields = ("status", "mode")
    lookup_value_regex = "[^/]+"
    queryset = APIKey.objects.none()  # for the schema; get_queryset scopes to the caller

    def get_queryset(self):
        return selectors.api_key_list(merchant_id=request_principal(self.request).merchant_id)

    def get_object(self):
        api_key = selectors.api_key_get(
            merchant_id=request_principal(self.request).merchant_id, lookup=self.kwargs["pk"]
        )
        if api_key is None:
            raise NotFound("No such API key.")
        return api_key

    @idempotent(secret_fields=("key", "key_secret"))
    def create(self, request):
        serializer = s.APIKeyCreateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = dict(serializer.validated_data)
        principal = request.user
        mode = data.pop("mode", None) or principal.mode
        if mode == APIKey.Mode.LIVE and principal.mode != APIKey.Mode.LIVE:
            raise PermissionDenied("A test-mode credential cannot create a live key.", details={"mode": mode})
        data.setdefault("permissions", list(principal.permissions))
        created = services.api_key_create(
            merchant=principal.merchant,
            mode=mode,
            granted_by=list(principal.permissions),
            max_limits=_creator_limits(principal),
            **data,
        )
        api_key = created.api_key
        # Read by APIKeyCreatedSerializer for this one response; never saved.
        api_key.key_secret, api_key.key = created.secret, created.key  # type: ignore[attr-defined]
        return Response(s.APIKeyCreatedSerializer(api_key).data, status=status.HTTP_201_CREATED)

    def update(self, request, pk=None):
        api_key = self.get_object()
        serializer = s.APIKeyUpdateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        api_key = services.api_key_update(
            api_key=api_key,
            granted_by=list(request.user.permissions),
            max_limits=_creator_limits(request.user),
            **serializer.validated_data,
        )
        return Response(s.APIKeySerializer(api_key).data)

    def partial_update(self, request, pk=None):
        return self.update(request, pk=pk)

    def destroy(self, request, pk=None):
        api_key = services.api_key_revoke(api_key=self.get_object())
        return Response(s.APIKeySerializer(api_key).data)


def _guard_token_attempt(ip, data) -> list[ratelimit.Decision]:
    """Count an attempt against the failure budgets of the client IP, and of the client IP with this
    credential (key_id or username). Counted before checking, so parallel guesses cannot overrun a
    budget; the caller gives the units back when the credentials were right (``ratelimit.refund``).
    Over either budget: 429, whether or not the credentials are right (else 429/200 is an oracle)."""
    if not settings.RATE_LIMIT_ENABLED:
        return []
    credential = data.get("key_id") or f"user:{data.get('username', '')}"
    digest = hashlib.sha256(credential.encode()).hexdigest()[:24]
    budgets = (
        (f"tokenfail:{ip}", settings.ACCOUNTS_TOKEN_FAILURE_LIMITS),
        (
            f"tokenfail:{ip}:{digest}",
            settings.ACCOUNTS_TOKEN_CREDENTIAL_FAILURE_LIMITS,
        ),
    )
    counted: list[ratelimit.Decision] = []
    for bucket, limits in budgets:
        decision = ratelimit.hit(bucket, limits, limiter="token_failures")
        if decision is not None and not decision.allowed:
            for earlier in counted:
                ratelimit.refund(earlier)
            raise RateLimited(
                "Too many failed authentication attempts from this address.",
                details={"retry_after": decision.retry_after},
                headers={"Retry-After": str(decision.retry_after)},
            )
        if decision is not None:
            counted.append(decision)
    return counted


class TokenViewSet(viewsets.GenericViewSet):
    """JWT issue, refresh, validate and revoke. No credential needed: the body carries it."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = s.TokenObtainSerializer

    @extend_schema(
        summary="Issue a JWT pair from key_id + key_secret, or a merchant user's username + password",
        request=s.TokenObtainSerializer,
        responses={200: s.TokenPairSerializer},
        auth=[],
    )
    def create(self, request):
        serializer = s.TokenObtainSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        ip = client_ip(request)
        attempts = _guard_token_attempt(ip, data)
        if "key_id" in data:
            pair = jwt.token_obtain_for_api_key(key_id=data["key_id"], key_secret=data["key_secret"], ip=ip)
        else:
            pair = jwt.token_obtain_for_user(
                username=data["username"],
                password=data["password"],
                mode=data.get("mode", APIKey.Mode.TEST),
                request=request._request,
            )
        for attempt in attempts:
            ratelimit.refund(attempt)
        return Response(pair.as_response())

    @extend_schema(
        summary="Exchange a refresh token for a new pair (the old refresh token stops working)",
        request=s.RefreshRequestSerializer,
        responses={200: s.TokenPairSerializer},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def refresh(self, request):
        serializer = s.RefreshRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(jwt.token_refresh(raw=serializer.validated_data["refresh_token"]).as_response())

    @extend_schema(
        summary="Tell whether a token is valid now, with its claims",
        request=s.TokenRequestSerializer,
        responses={200: s.TokenValidationSerializer},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def validate(self, request):
        serializer = s.TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(jwt.token_validate(raw=serializer.validated_data["token"]))

    @extend_schema(
        summary="Revoke a token (a refresh token also ends its session's access tokens)",
        request=s.TokenRequestSerializer,
        responses={200: s.TokenRevocationSerializer},
        auth=[],
    )
    @action(detail=False, methods=["post"])
    def revoke(self, request):
        serializer = s.TokenRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return Response(jwt.token_revoke(raw=serializer.validated_data["token"]))


class AuthViewSet(viewsets.GenericViewSet):
    """Who am I, what may I do, and housekeeping."""

    permission_classes = [IsMerchantPrincipal]
    serializer_class = s.MeSerializer
    write_scope = "api_keys:write"

    def get_permissions(self):
        if self.action == "cleanup":
            return [IsStaffOrHasScope()]
        return super().get_permissions()

    @extend_schema(summary="The calling merchant, credential, permissions and rate limits", responses=s.MeSerializer)
    @action(detail=False, methods=["get"])
    def me(self, request):
        principal = request.user
        merchant = principal.merchant
        limits = principal.limits or {}
        return Response(
            {
                "merchant_id": str(principal.merchant_id),
                "merchant_name": merchant.name,
                "merchant_status": merchant.status,
                "credential_type": principal.credential_type,
                "token_subject": principal.token_subject,
                "api_key_id": str(principal.api_key_id) if principal.api_key_id else None,
                "key_id": principal.key_id,
                "user_id": principal.user_id,
                "username": principal.username,
                "permissions": list(principal.permissions),
                "effective_permissions": scopes.expand(principal.permissions),
                "mode": principal.mode,
                "is_test": principal.is_test,
                "rate_limits": {"minute": limits.get("minute"), "hour": limits.get("hour"), "day": limits.get("day")},
            }
        )

    @extend_schema(
        summary="Which of the given permissions the calling credential holds",
        request=s.PermissionCheckSerializer,
        responses=s.PermissionCheckResultSerializer,
    )
    @action(detail=False, methods=["post"], url_path="permissions/check")
    def permissions_check(self, request):
        serializer = s.PermissionCheckSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        held = request.user.permissions
        results = {p: scopes.grants(held, p) for p in serializer.validated_data["permissions"]}
        granted = [p for p, ok in results.items() if ok]
        denied = [p for p, ok in results.items() if not ok]
        return Response({"granted": granted, "denied": denied, "results": results, "all_granted": not denied})

    @extend_schema(
        summary="Delete expired tokens and revocations, mark expired keys (staff or api_keys:write)",
        request=None,
        responses=s.CleanupResultSerializer,
    )
    @action(detail=False, methods=["post"])
    def cleanup(self, request):
        return Response(services.auth_cleanup())
