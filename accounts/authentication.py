"""DRF authentication: ``X-API-Key: <key_id>.<secret>`` and ``Authorization: Bearer <jwt>``.

Both resolve to a ``MerchantPrincipal`` and then pass the same gate (``admit``): the credential's IP
rules (403 ip_not_allowed), its rate limits (429 rate_limited; the headers go on every response) and
usage tracking. Every credential failure is ``401 authentication_failed``; an unknown key id and a
wrong secret get the same answer, so the API is no oracle for valid key ids. Secrets are never logged.
"""

from __future__ import annotations

import logging
from typing import NoReturn

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication

from core.exceptions import AuthenticationFailed

from . import keys, ratelimit
from .ipfilter import check_ip_rules, client_ip
from .jwt import CRED_API_KEY, access_token_authenticate
from .principal import MerchantPrincipal
from .selectors import (
    forget_local_key_snapshot,
    key_bucket,
    key_snapshot_problem,
    load_key_snapshot,
    load_local_key_snapshot,
    local_key_snapshot,
    merchant_rate_limits,
)
from .services import api_key_secret_rehash, api_key_usage_record

logger = logging.getLogger("easypay.auth")

__all__ = ["APIKeyAuthentication", "MerchantJWTAuthentication", "admit", "load_key_snapshot"]


def public_snapshot(snapshot: dict) -> dict:
    """The key snapshot as ``request.auth``: everything but the secret's hash."""
    return {k: v for k, v in snapshot.items() if k != "hash"}


def secret_accepted(key_id: str, secret: str, snapshot: dict | None) -> bool:
    """Whether ``secret`` is the key's; one that matched under the previous hash key is re-hashed."""
    if snapshot is None:
        return False
    match = keys.secret_match(secret, snapshot["hash"])
    if match == keys.PREVIOUS:
        api_key_secret_rehash(key_id=key_id, secret=secret, old_hash=snapshot["hash"])
    return match is not None


def _bucket(principal: MerchantPrincipal) -> str:
    if principal.api_key_id:
        assert principal.key_id is not None  # a key's principal always names its key id
        return key_bucket(principal.key_id)
    return f"user:{principal.user_id}"


def admit(request, principal: MerchantPrincipal, *, ip_allow=(), ip_deny=()) -> None:
    """IP rules, then rate limits, then usage: the checks every authenticated request passes."""
    check_ip_rules(client_ip(request), allow=ip_allow, deny=ip_deny)
    # A key's use is counted by the rate-limit script in the same Redis round trip when it can be.
    decision = ratelimit.enforce(
        request,
        bucket=_bucket(principal),
        limits=principal.limits,
        count_use=bool(principal.api_key_id),
        merchant=ratelimit.merchant_bucket(principal.merchant_id),
        merchant_limits=principal.merchant_limits,
    )
    if principal.api_key_id:
        uses = decision.uses_to_flush if decision is not None else None
        api_key_usage_record(api_key_id=str(principal.api_key_id), uses_to_flush=uses)


def _admit_copy(request, principal: MerchantPrincipal, snapshot: dict, version: int) -> bool:
    """``admit`` for a key known from this process's copy: the rate-limit script also answers the key's
    current version, and only if the copy is of that version is anything decided on it (``False``
    otherwise, with the count given back). Then: IP rules (a refused address gives its count back, as
    when it is checked first), the limits (429), the use."""
    if not settings.RATE_LIMIT_ENABLED:
        return False
    decision = ratelimit.hit(
        _bucket(principal),
        principal.limits,
        count_use=True,
        merchant=ratelimit.merchant_bucket(principal.merchant_id),
        merchant_limits=principal.merchant_limits,
    )
    if decision is None or decision.version != version:
        ratelimit.refund(decision)
        return False
    try:
        check_ip_rules(client_ip(request), allow=snapshot["ip_whitelist"], deny=snapshot["ip_blacklist"])
    except Exception:
        ratelimit.refund(decision)
        raise
    ratelimit.apply(request, decision)
    api_key_usage_record(api_key_id=str(principal.api_key_id), uses_to_flush=decision.uses_to_flush)
    return True


def _key_principal(snapshot: dict, key_id: str) -> MerchantPrincipal:
    return MerchantPrincipal(
        merchant_id=snapshot["merchant_id"],
        permissions=snapshot["permissions"],
        mode=snapshot["mode"],
        credential_type="api_key",
        api_key_id=snapshot["pk"],
        key_id=key_id,
        limits=snapshot["limits"],
        merchant_limits=merchant_rate_limits(snapshot.get("merchant_limits")),
    )


class APIKeyAuthentication(BaseAuthentication):
    header = "X-API-Key"

    def authenticate(self, request):
        raw = request.headers.get(self.header)
        if raw is None:
            return None
        parts = keys.split_key(raw)
        if parts is None:
            raise AuthenticationFailed("Malformed API key.")
        key_id, secret = parts
        # This process's copy of the key, confirmed current by the rate-limit script's answer: one
        # Redis round trip for auth, limits and usage together. Anything else takes the path below.
        copy: tuple[dict | None, int] | None
        copy, fresh = local_key_snapshot(key_id), False
        if copy is None:
            copy, fresh = load_local_key_snapshot(key_id), True
        if copy is not None:
            snapshot, version = copy
            # A key's secret never changes, so a copy can refuse a wrong one (and a just-read
            # ``None`` is no such key).
            if not secret_accepted(key_id, secret, snapshot):
                self._reject(key_id, "unknown_or_wrong_secret", "Invalid API key.")
            assert snapshot is not None  # secret_accepted() refuses a missing key
            problem = key_snapshot_problem(snapshot)
            if problem is None:
                principal = _key_principal(snapshot, key_id)
                if _admit_copy(request, principal, snapshot, version):
                    return principal, public_snapshot(snapshot)
            elif fresh or ratelimit.credential_version(key_bucket(key_id)) == version:
                self._reject(key_id, problem, problem)  # revoked, expired or suspended as of now
            forget_local_key_snapshot(key_id)  # changed since: decided below on the current row
        current = load_key_snapshot(key_id)
        if not secret_accepted(key_id, secret, current):
            self._reject(key_id, "unknown_or_wrong_secret", "Invalid API key.")
        assert current is not None  # secret_accepted() refuses a missing key
        snapshot = current
        problem = key_snapshot_problem(snapshot)
        if problem:
            self._reject(key_id, problem, problem)
        principal = _key_principal(snapshot, key_id)
        admit(request, principal, ip_allow=snapshot["ip_whitelist"], ip_deny=snapshot["ip_blacklist"])
        return principal, public_snapshot(snapshot)

    @staticmethod
    def _reject(key_id: str, reason: str, message: str) -> NoReturn:
        logger.info("api key rejected", extra={"key_id": key_id, "reason": reason})
        raise AuthenticationFailed(message)

    def authenticate_header(self, request):
        return 'ApiKey realm="api"'


class MerchantJWTAuthentication(BaseAuthentication):
    """``Authorization: Bearer <access token>`` from ``POST /api/v1/auth/tokens``."""

    keyword = "bearer"

    def authenticate(self, request):
        header = request.headers.get("Authorization")
        if header is None:
            return None
        parts = header.split()
        if parts and parts[0].lower() != self.keyword:
            return None  # another scheme is not ours; no credential -> 401 from the permission check
        if len(parts) != 2:
            raise AuthenticationFailed("Malformed Authorization header: expected 'Bearer <token>'.")
        token, subject = access_token_authenticate(parts[1])
        membership = subject.membership
        snapshot = subject.key_snapshot if subject.cred == CRED_API_KEY else None
        principal = MerchantPrincipal(
            merchant_id=subject.merchant_id,
            permissions=subject.permissions,
            mode=subject.mode,
            credential_type="jwt",
            api_key_id=snapshot["pk"] if snapshot is not None else None,
            key_id=snapshot["key_id"] if snapshot is not None else None,
            user_id=membership.user_id if membership else None,
            username=membership.user.get_username() if membership else None,
            limits=subject.limits,
            merchant_limits=subject.merchant_limits,
            is_staff=bool(membership and membership.user.is_staff),
            token_subject=subject.cred,
        )
        snapshot = subject.key_snapshot or {}
        admit(request, principal, ip_allow=snapshot.get("ip_whitelist", ()), ip_deny=snapshot.get("ip_blacklist", ()))
        return principal, token

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class APIKeyScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.APIKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "X-API-Key"}


class JWTScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.MerchantJWTAuthentication"
    name = "BearerAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
