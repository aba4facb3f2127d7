"""Who is calling: the merchant, the credential and its permissions (``request.user`` in DRF)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, cast

from . import scopes

if TYPE_CHECKING:
    from rest_framework.request import Request


@dataclass
class MerchantPrincipal:
    merchant_id: str  # the merchant's UUID as text, as the key snapshot and the token claims carry it
    permissions: list[str]
    mode: str  # "test" or "live"
    credential_type: str  # "api_key" or "jwt"
    api_key_id: uuid.UUID | None = None  # APIKey.pk
    key_id: str | None = None  # the public key id
    user_id: int | None = None  # Django user behind a JWT login
    username: str | None = None
    token_subject: str | None = None  # for JWTs: "api_key" or "user", what the token was minted from
    limits: dict[str, int] = field(default_factory=dict)
    # The merchant's aggregate limits (all of its keys and logins together), settings' defaults applied.
    merchant_limits: dict[str, int] = field(default_factory=dict)
    is_authenticated: bool = True
    is_anonymous: bool = False
    is_staff: bool = False

    @cached_property
    def merchant(self):
        from .models import Merchant

        return Merchant.objects.get(pk=self.merchant_id)

    @property
    def is_test(self) -> bool:
        return self.mode == "test"

    def has_scope(self, scope: str) -> bool:
        return scopes.grants(self.permissions, scope)

    @property
    def pk(self):
        return self.user_id or self.api_key_id

    def __str__(self) -> str:
        return f"{self.credential_type}:{self.key_id or self.user_id}@{self.merchant_id}"


def request_principal(request: Request) -> MerchantPrincipal:
    """``request.user`` behind the merchant authentication classes, which always put a principal there."""
    return cast(MerchantPrincipal, request.user)
