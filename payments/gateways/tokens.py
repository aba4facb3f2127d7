"""Test card tokens (CONTRACT section 7): what each ``tok_*`` sends to the processor in test mode.

The cards are Authorize.Net's published sandbox test numbers, and the billing ZIP / card code /
expiry values are the sandbox's own triggers (ZIP 46282 declines, card code 901 is a CVV mismatch,
4007000000027 is held for review, 4012888818888 is a processor error), so each token behaves the
same against the local emulator and against Authorize.Net's real sandbox.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from .base import InvalidPaymentSource

__all__ = ["TEST_TOKENS", "InvalidPaymentSource", "TestCard", "is_test_token", "resolve_test_token"]

# Any future expiry is accepted; keep it a few years ahead of whenever this module is imported.
_FUTURE_EXPIRY = f"{date.today().year + 5}-12"
_PAST_EXPIRY = "2020-01"


@dataclass(frozen=True)
class TestCard:
    __test__ = False  # not a pytest test class, despite the name

    number: str
    expiry: str  # YYYY-MM, the format Authorize.Net's creditCard.expirationDate takes
    card_code: str
    zip: str  # billing ZIP; empty sends no billTo
    brand: str

    @property
    def last_four(self) -> str:
        return self.number[-4:]


TEST_TOKENS: dict[str, TestCard] = {
    "tok_visa_4242": TestCard("4242424242424242", _FUTURE_EXPIRY, "123", "", "visa"),
    "tok_visa": TestCard("4111111111111111", _FUTURE_EXPIRY, "123", "", "visa"),
    "tok_mastercard": TestCard("5424000000000015", _FUTURE_EXPIRY, "123", "", "mastercard"),
    "tok_amex": TestCard("370000000000002", _FUTURE_EXPIRY, "1234", "", "amex"),
    "tok_discover": TestCard("6011000000000012", _FUTURE_EXPIRY, "123", "", "discover"),
    "tok_jcb": TestCard("3088000000000017", _FUTURE_EXPIRY, "123", "", "jcb"),
    "tok_declined": TestCard("4111111111111111", _FUTURE_EXPIRY, "123", "46282", "visa"),
    "tok_cvv_mismatch": TestCard("4111111111111111", _FUTURE_EXPIRY, "901", "", "visa"),
    "tok_expired": TestCard("4111111111111111", _PAST_EXPIRY, "123", "", "visa"),
    "tok_held": TestCard("4007000000027", _FUTURE_EXPIRY, "123", "", "visa"),
    "tok_processor_error": TestCard("4012888818888", _FUTURE_EXPIRY, "123", "", "visa"),
}


def is_test_token(token: str | None) -> bool:
    """True for the tokens listed above (exact match)."""
    return bool(token) and token in TEST_TOKENS


def looks_like_test_token(token: str | None) -> bool:
    """True for anything in the ``tok_`` namespace, listed or not: never sent as a live nonce."""
    return token is not None and token.startswith("tok_")


def resolve_test_token(token: str) -> TestCard:
    try:
        return TEST_TOKENS[token]
    except KeyError:
        raise InvalidPaymentSource(f"unknown test card token {token!r}") from None
