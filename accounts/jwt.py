"""JWTs for merchants: minted from an API key (key_id + key_secret) or a merchant user's login.

Tokens are simplejwt's, HS256 under ``settings.JWT_SIGNING_KEY`` (a secret of its own, never
``SECRET_KEY``); the algorithm list is fixed, so ``alg=none`` and foreign keys are refused. During a
rotation tokens signed with ``JWT_SIGNING_KEY_PREVIOUS`` are still accepted; new ones are always
signed with the current key (``RotatingTokenBackend``). Claims:

- both kinds: ``token_type``, ``jti``, ``iat``, ``exp``, ``cred`` (``"api_key"`` or ``"user"``),
  ``merchant_id``, ``permissions``, ``mode``, ``sid`` (the login session, shared by every token
  refreshed from the same login);
- key tokens: ``key_id`` and ``api_key_id`` (the key's pk); user tokens: ``user_id`` and ``username``.

Every use re-checks the credential behind the token (the key through its cached snapshot, the user in
the database), so revoking a key or disabling a user kills its tokens at once, and the permissions in
use are the intersection of the token's and the credential's current ones.

Revocation: a refresh token is blacklisted in simplejwt's tables; an access token's ``jti`` is stored
as a ``RevokedToken`` (and cached). Revoking a refresh token also revokes its session, i.e. every access
token issued from the same login (RFC 7009 section 2.1).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings
from django.contrib.auth import authenticate
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.backends import TokenBackend
from rest_framework_simplejwt.exceptions import (
    ExpiredTokenError,
    TokenBackendError,
    TokenBackendExpiredToken,
    TokenError,
)
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from rest_framework_simplejwt.tokens import AccessToken as _AccessToken
from rest_framework_simplejwt.tokens import RefreshToken as _RefreshToken
from rest_framework_simplejwt.tokens import UntypedToken as _UntypedToken

from core.exceptions import AuthenticationFailed

from . import keys, scopes, selectors, services
from .ipfilter import check_ip_rules
from .models import Merchant, MerchantUser, RevokedToken

logger = logging.getLogger("easypay.auth")

CRED_API_KEY = "api_key"
CRED_USER = "user"
ACCESS = "access"
REFRESH = "refresh"
REVOCATION_CACHE_SECONDS = 300


class RotatingTokenBackend(TokenBackend):
    """simplejwt's backend with the keys read from settings on each use: signs with ``JWT_SIGNING_KEY``,
    verifies with it and then with ``JWT_SIGNING_KEY_PREVIOUS`` (the rotation window). PyJWT checks
    the signature before the expiry, so "expired" always means "signed by one of our keys"."""

    def __init__(self):
        super().__init__(
            jwt_settings.ALGORITHM,
            None,
            None,  # type: ignore[arg-type]  # no separate verifying key (HS*): simplejwt reads None, annotates str
            jwt_settings.AUDIENCE,
            jwt_settings.ISSUER,
            None,
            jwt_settings.LEEWAY,
            jwt_settings.JSON_ENCODER,
        )

    @staticmethod
    def _keys() -> list[str]:
        previous = settings.JWT_SIGNING_KEY_PREVIOUS
        return [settings.JWT_SIGNING_KEY, *([previous] if previous else [])]

    def _with_key(self, key: str) -> TokenBackend:
        # None: no separate verifying key (HS*); simplejwt handles None but annotates the argument as str.
        return TokenBackend(
            self.algorithm,
            key,
            None,  # type: ignore[arg-type]
            self.audience,
            self.issuer,
            None,
            self.leeway,
            self.json_encoder,
        )

    def encode(self, payload: dict) -> str:
        return self._with_key(settings.JWT_SIGNING_KEY).encode(payload)

    def decode(self, token, verify: bool = True) -> dict:
        candidates = self._keys()
        for index, key in enumerate(candidates):
            try:
                return self._with_key(key).decode(token, verify=verify)
            except TokenBackendExpiredToken:
                raise
            except TokenBackendError:
                if not verify or index == len(candidates) - 1:
                    raise
        raise TokenBackendError("Token is invalid")  # pragma: no cover (the loop always returns or raises)


_BACKEND = RotatingTokenBackend()


class AccessToken(_AccessToken):
    _token_backend = _BACKEND


class RefreshToken(_RefreshToken):
    _token_backend = _BACKEND
    access_token_class = AccessToken


class UntypedToken(_UntypedToken):
    _token_backend = _BACKEND


@dataclass(frozen=True)
class TokenPair:
    access: _AccessToken  # RefreshToken.access_token makes ours; simplejwt types it as its own base class
    refresh: RefreshToken

    def as_response(self) -> dict:
        return {
            "access_token": str(self.access),
            "refresh_token": str(self.refresh),
            "token_type": "Bearer",
            "expires_in": int(jwt_settings.ACCESS_TOKEN_LIFETIME.total_seconds()),
            "refresh_expires_in": int(jwt_settings.REFRESH_TOKEN_LIFETIME.total_seconds()),
        }


@dataclass(frozen=True)
class TokenSubject:
    """The live credential behind a token, re-read on every use."""

    cred: str
    merchant_id: str
    permissions: list[str]
    mode: str
    limits: dict
    merchant_limits: dict
    key_snapshot: dict | None = None
    membership: MerchantUser | None = None


def _epoch_to_dt(value) -> datetime:
    return datetime.fromtimestamp(int(value), tz=UTC)


# --- minting ---------------------------------------------------------------------------------------


def _mint(claims: dict, *, user=None) -> TokenPair:
    refresh = RefreshToken()
    for name, value in claims.items():
        refresh[name] = value
    access = refresh.access_token
    OutstandingToken.objects.create(
        user=user,
        jti=refresh[jwt_settings.JTI_CLAIM],
        token=str(refresh),
        created_at=refresh.current_time,
        expires_at=_epoch_to_dt(refresh["exp"]),
    )
    return TokenPair(access=access, refresh=refresh)


def token_pair_for_api_key(*, snapshot: dict, session_id: str | None = None) -> TokenPair:
    return _mint(
        {
            "cred": CRED_API_KEY,
            "merchant_id": snapshot["merchant_id"],
            "key_id": snapshot["key_id"],
            "api_key_id": snapshot["pk"],
            "permissions": list(snapshot["permissions"]),
            "mode": snapshot["mode"],
            "sid": session_id or uuid.uuid4().hex,
        }
    )


def token_pair_for_user(*, membership: MerchantUser, mode: str = "test", session_id: str | None = None) -> TokenPair:
    return _mint(
        {
            "cred": CRED_USER,
            jwt_settings.USER_ID_CLAIM: membership.user_id,
            "username": membership.user.get_username(),
            "merchant_id": str(membership.merchant_id),
            "permissions": list(membership.permissions or []),
            "mode": mode,
            "sid": session_id or uuid.uuid4().hex,
        },
        user=membership.user,
    )


# --- the credential behind a token -----------------------------------------------------------------


def _user_limits() -> dict:
    from django.conf import settings

    return dict(settings.ACCOUNTS_USER_RATE_LIMITS)


def token_subject(payload) -> TokenSubject:
    """The live credential behind a verified token's claims; raises 401 when it is gone or disabled."""
    cred = payload.get("cred")
    if cred == CRED_API_KEY:
        snapshot = selectors.load_key_snapshot(str(payload.get("key_id", "")))
        if snapshot is None or snapshot["pk"] != payload.get("api_key_id"):
            raise AuthenticationFailed("The API key behind this token no longer exists.")
        problem = selectors.key_snapshot_problem(snapshot)
        if problem:
            raise AuthenticationFailed(problem)
        return TokenSubject(
            cred=cred,
            merchant_id=snapshot["merchant_id"],
            permissions=scopes.intersect(payload.get("permissions") or [], snapshot["permissions"]),
            mode=snapshot["mode"],
            limits=snapshot["limits"],
            merchant_limits=selectors.merchant_rate_limits(snapshot.get("merchant_limits")),
            key_snapshot=snapshot,
        )
    if cred == CRED_USER:
        membership = selectors.merchant_user_get(user_id=payload.get(jwt_settings.USER_ID_CLAIM))
        problem = selectors.merchant_user_problem(membership)
        if problem:
            raise AuthenticationFailed(problem)
        assert membership is not None  # merchant_user_problem() refuses a missing membership
        if str(membership.merchant_id) != payload.get("merchant_id"):
            raise AuthenticationFailed("This user no longer belongs to the token's merchant.")
        return TokenSubject(
            cred=cred,
            merchant_id=str(membership.merchant_id),
            permissions=scopes.intersect(payload.get("permissions") or [], membership.permissions or []),
            mode=payload.get("mode") if payload.get("mode") in ("test", "live") else "test",
            limits=_user_limits(),
            merchant_limits=selectors.merchant_rate_limits(selectors.merchant_limit_overrides(membership.merchant)),
            membership=membership,
        )
    raise AuthenticationFailed("Invalid token.")


# --- revocation ------------------------------------------------------------------------------------


def _revoked_key(token_id: str) -> str:
    return f"jwt:revoked:v1:{token_id}"


def is_revoked(*token_ids: str | None) -> bool:
    """Whether any of the ids (a jti, a session id) was revoked. Cache-aside over ``RevokedToken``."""
    ids = [t for t in token_ids if t]
    if not ids:
        return False
    cached = cache.get_many([_revoked_key(t) for t in ids])
    if any(cached.get(_revoked_key(t)) for t in ids):
        return True
    missing = [t for t in ids if _revoked_key(t) not in cached]
    if not missing:
        return False
    found = set(
        RevokedToken.objects.filter(jti__in=missing, expires_at__gt=timezone.now()).values_list("jti", flat=True)
    )
    cache.set_many({_revoked_key(t): t in found for t in missing}, REVOCATION_CACHE_SECONDS)
    return bool(found)


def _record_revoked(*, token_id: str, kind: str, expires_at: datetime, merchant_id: str | None) -> None:
    if merchant_id and not Merchant.objects.filter(pk=merchant_id).exists():
        merchant_id = None
    RevokedToken.objects.get_or_create(
        jti=token_id, defaults={"kind": kind, "expires_at": expires_at, "merchant_id": merchant_id}
    )
    ttl = max(1, int((expires_at - timezone.now()).total_seconds()))
    cache.set(_revoked_key(token_id), True, ttl)


def _blacklist_refresh(payload, raw: str) -> bool:
    """Blacklist a refresh token; ``False`` when it already was (the unique row decides races)."""
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=payload[jwt_settings.JTI_CLAIM],
        defaults={"token": raw, "created_at": timezone.now(), "expires_at": _epoch_to_dt(payload["exp"])},
    )
    try:
        with transaction.atomic():
            BlacklistedToken.objects.create(token=outstanding)
    except IntegrityError:
        return False
    return True


# --- verification ----------------------------------------------------------------------------------


def _verify(raw: str, token_class):
    try:
        return token_class(raw)
    except ExpiredTokenError:
        raise AuthenticationFailed("The token has expired.")
    except TokenError:
        raise AuthenticationFailed("The token is invalid.")


def access_token_authenticate(raw: str) -> tuple[AccessToken, TokenSubject]:
    """A Bearer token -> (token, live subject). Every failure is 401."""
    token = _verify(raw, AccessToken)
    if is_revoked(token.get(jwt_settings.JTI_CLAIM), token.get("sid")):
        raise AuthenticationFailed("The token has been revoked.")
    return token, token_subject(token.payload)


def token_refresh(*, raw: str) -> TokenPair:
    """Rotate: the refresh token is blacklisted (once: concurrent reuse loses) and a new pair minted
    for the same session with the credential's current permissions."""
    token = _verify(raw, UntypedToken)
    if token.get(jwt_settings.TOKEN_TYPE_CLAIM) != REFRESH:
        raise AuthenticationFailed("This is not a refresh token.")
    if is_revoked(token.get("sid")):
        raise AuthenticationFailed("The token has been revoked.")
    subject = token_subject(token.payload)
    with transaction.atomic():
        if not _blacklist_refresh(token.payload, raw):
            # A rotated-out refresh token came back: a client retrying after a lost reply, or a copy in
            # someone else's hands. Refused and logged with its session so that an operator can revoke
            # the session (POST /auth/tokens/revoke with the newest refresh token ends it). The session
            # is not ended automatically: a retry would log the legitimate client out.
            logger.warning(
                "refresh token reused",
                extra={"sid": token.get("sid"), "jti": token.get(jwt_settings.JTI_CLAIM), "cred": subject.cred},
            )
            raise AuthenticationFailed("The refresh token has already been used or revoked.")
        sid = token.get("sid")
        if subject.cred == CRED_API_KEY:
            assert subject.key_snapshot is not None  # token_subject() sets it for an API-key credential
            return token_pair_for_api_key(snapshot=subject.key_snapshot, session_id=sid)
        assert subject.membership is not None  # and the membership for a user credential
        return token_pair_for_user(membership=subject.membership, mode=subject.mode, session_id=sid)


def token_validate(*, raw: str) -> dict:
    """``{"valid": bool, ...}``: the claims of a good token, the reason for a bad one."""
    try:
        token = UntypedToken(raw)  # type: ignore[arg-type]  # simplejwt annotates the raw token as Token; it takes the string
    except ExpiredTokenError:
        return {"valid": False, "reason": "expired"}
    except TokenError:
        return {"valid": False, "reason": "invalid"}
    token_type = token.get(jwt_settings.TOKEN_TYPE_CLAIM)
    jti = token.get(jwt_settings.JTI_CLAIM)
    if token_type not in (ACCESS, REFRESH):
        return {"valid": False, "reason": "invalid"}
    revoked = is_revoked(jti, token.get("sid")) or (
        token_type == REFRESH and BlacklistedToken.objects.filter(token__jti=jti).exists()
    )
    if revoked:
        return {"valid": False, "reason": "revoked", "token_type": token_type}
    try:
        subject = token_subject(token.payload)
    except AuthenticationFailed as exc:
        return {"valid": False, "reason": "credential_inactive", "token_type": token_type, "message": exc.message}
    expires_at = _epoch_to_dt(token["exp"])
    return {
        "valid": True,
        "token_type": token_type,
        "jti": jti,
        "credential": subject.cred,
        "merchant_id": subject.merchant_id,
        "key_id": token.get("key_id"),
        "user_id": token.get(jwt_settings.USER_ID_CLAIM),
        "username": token.get("username"),
        "permissions": subject.permissions,
        "mode": subject.mode,
        "issued_at": _epoch_to_dt(token["iat"]).isoformat().replace("+00:00", "Z") if "iat" in token else None,
        "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        "expires_in": max(0, int((expires_at - timezone.now()).total_seconds())),
    }


def token_revoke(*, raw: str) -> dict:
    """Revoke an access token (its jti) or a refresh token (blacklisted, and its whole session).

    Idempotent. An expired token is already unusable: answered as revoked without writing anything.
    A token that is not ours (bad signature, garbage) raises 401.
    """
    try:
        token = UntypedToken(raw)  # type: ignore[arg-type]  # simplejwt annotates the raw token as Token; it takes the string
    except ExpiredTokenError:
        return {"revoked": True, "already_expired": True}
    except TokenError:
        raise AuthenticationFailed("The token is invalid.")
    token_type = token.get(jwt_settings.TOKEN_TYPE_CLAIM)
    jti = token.get(jwt_settings.JTI_CLAIM)
    merchant_id = token.get("merchant_id")
    if token_type == ACCESS:
        _record_revoked(
            token_id=jti, kind=RevokedToken.Kind.ACCESS, expires_at=_epoch_to_dt(token["exp"]), merchant_id=merchant_id
        )
    elif token_type == REFRESH:
        _blacklist_refresh(token.payload, raw)
        sid = token.get("sid")
        if sid:
            # Any token of this session was issued before now, so none outlives now + the refresh lifetime.
            _record_revoked(
                token_id=sid,
                kind=RevokedToken.Kind.SESSION,
                expires_at=timezone.now() + jwt_settings.REFRESH_TOKEN_LIFETIME,
                merchant_id=merchant_id,
            )
    else:
        raise AuthenticationFailed("The token is invalid.")
    return {"revoked": True, "token_type": token_type, "jti": jti}


# --- obtaining a pair ------------------------------------------------------------------------------


def token_obtain_for_api_key(*, key_id: str, key_secret: str, ip) -> TokenPair:
    """key_id + key_secret -> a pair. Same 401 for unknown id and wrong secret; the key's IP rules apply."""
    snapshot = selectors.load_key_snapshot(key_id) if keys.KEY_ID_RE.match(key_id or "") else None
    match = keys.secret_match(key_secret or "", snapshot["hash"]) if snapshot is not None else None
    if match is None:
        raise AuthenticationFailed("Invalid key_id or key_secret.")
    assert snapshot is not None  # a secret only matches a loaded key
    if match == keys.PREVIOUS:
        services.api_key_secret_rehash(key_id=key_id, secret=key_secret, old_hash=snapshot["hash"])
    problem = selectors.key_snapshot_problem(snapshot)
    if problem:
        raise AuthenticationFailed(problem)
    check_ip_rules(ip, allow=snapshot["ip_whitelist"], deny=snapshot["ip_blacklist"])
    return token_pair_for_api_key(snapshot=snapshot)


def token_obtain_for_user(*, username: str, password: str, mode: str = "test", request=None) -> TokenPair:
    # ``request``: the login's HTTP request, for the authentication signals' receivers (the staff
    # lockout ignores logins outside the admin, see accounts.staff_auth).
    user = authenticate(request, username=username, password=password)
    if user is None:
        raise AuthenticationFailed("Invalid username or password.")
    membership = selectors.merchant_user_get(user_id=user.pk)
    problem = selectors.merchant_user_problem(membership)
    if problem:
        raise AuthenticationFailed(problem)
    assert membership is not None  # merchant_user_problem() refuses a missing membership
    return token_pair_for_user(membership=membership, mode=mode)
