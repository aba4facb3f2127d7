"""Test card tokens (CONTRACT section 7) and how the adapter turns a token into a payment source."""

from __future__ import annotations

from datetime import date

import pytest

from payments.gateways.authorize_net import ACCEPT_DESCRIPTOR, AuthorizeNetConfig, AuthorizeNetGateway
from payments.gateways.base import InvalidPaymentSource
from payments.gateways.sandbox.state import luhn_ok
from payments.gateways.tokens import TEST_TOKENS, is_test_token, looks_like_test_token, resolve_test_token

CONTRACT = {
    "tok_visa_4242": ("4242424242424242", "visa"),
    "tok_visa": ("4111111111111111", "visa"),
    "tok_mastercard": ("5424000000000015", "mastercard"),
    "tok_amex": ("370000000000002", "amex"),
    "tok_discover": ("6011000000000012", "discover"),
    "tok_jcb": ("3088000000000017", "jcb"),
    "tok_declined": ("4111111111111111", "visa"),
    "tok_cvv_mismatch": ("4111111111111111", "visa"),
    "tok_expired": ("4111111111111111", "visa"),
    "tok_held": ("4007000000027", "visa"),
    "tok_processor_error": ("4012888818888", "visa"),
}


def test_every_contract_token_maps_to_its_published_test_card():
    assert set(TEST_TOKENS) == set(CONTRACT)
    for token, (number, brand) in CONTRACT.items():
        card = resolve_test_token(token)
        assert (card.number, card.brand, card.last_four) == (number, brand, number[-4:])
        assert luhn_ok(card.number)


def test_trigger_values_are_the_sandbox_triggers():
    assert resolve_test_token("tok_declined").zip == "46282"
    assert resolve_test_token("tok_cvv_mismatch").card_code == "901"
    assert resolve_test_token("tok_amex").card_code == "1234"
    assert all(len(resolve_test_token(t).card_code) == 3 for t in TEST_TOKENS if t != "tok_amex")
    year, month = map(int, resolve_test_token("tok_expired").expiry.split("-"))
    assert (year, month) < (date.today().year, date.today().month)
    year, month = map(int, resolve_test_token("tok_visa").expiry.split("-"))
    assert (year, month) > (date.today().year, date.today().month)


def test_is_test_token_is_an_exact_match_and_the_tok_namespace_is_reserved():
    assert is_test_token("tok_visa")
    assert not is_test_token("tok_nope")
    assert not is_test_token("")
    assert not is_test_token(None)
    assert looks_like_test_token("tok_nope")
    assert not looks_like_test_token("eyJhbGciOiJIUzI1NiJ9")
    with pytest.raises(InvalidPaymentSource):
        resolve_test_token("tok_nope")


@pytest.fixture
def gateway():
    return AuthorizeNetGateway(AuthorizeNetConfig(api_login_id="x", transaction_key="y", endpoint="http://127.0.0.1:9"))


def test_live_mode_refuses_test_tokens_and_sends_anything_else_as_accept_nonce(gateway):
    with pytest.raises(InvalidPaymentSource, match="live mode"):
        gateway._payment_source(card_token="tok_visa", customer_profile_id=None, payment_profile_id=None, is_test=False)
    with pytest.raises(InvalidPaymentSource):
        gateway._payment_source(
            card_token="tok_made_up", customer_profile_id=None, payment_profile_id=None, is_test=False
        )

    payment, profile, card = gateway._payment_source(
        card_token="eyJub25jZSI6IjEyMyJ9", customer_profile_id=None, payment_profile_id=None, is_test=False
    )

    assert profile is None and card is None
    assert payment.creditCard is None
    assert (payment.opaqueData.dataDescriptor, payment.opaqueData.dataValue) == (
        ACCEPT_DESCRIPTOR,
        "eyJub25jZSI6IjEyMyJ9",
    )


def test_test_mode_accepts_only_listed_tokens(gateway):
    with pytest.raises(InvalidPaymentSource, match="test card tokens"):
        gateway._payment_source(
            card_token="eyJub25jZSI6IjEyMyJ9", customer_profile_id=None, payment_profile_id=None, is_test=True
        )

    payment, _, card = gateway._payment_source(
        card_token="tok_amex", customer_profile_id=None, payment_profile_id=None, is_test=True
    )

    assert (payment.creditCard.cardNumber, payment.creditCard.cardCode) == ("370000000000002", "1234")
    assert card.brand == "amex"


def test_a_stored_profile_is_sent_as_profile_not_payment(gateway):
    payment, profile, card = gateway._payment_source(
        card_token=None, customer_profile_id="500000001", payment_profile_id="510000001", is_test=True
    )

    assert payment is None and card is None
    assert (profile.customerProfileId, profile.paymentProfile.paymentProfileId) == ("500000001", "510000001")
