"""The request templates (anet_xml) write exactly the bytes the official SDK writes (anet_sdk).

For every request the adapter builds from templates, Hypothesis draws random inputs -- amounts of
any scale, ids, references, descriptions and customer fields of any XML-legal text (``&<>"'``,
control whitespace, non-ASCII, astral characters), each optional field present or absent,
credentials included -- and the template's document must be byte-identical to the one the
``apicontractsv1`` bindings produce through pyxb's validating generation. A second set draws values
outside the XSD's facets too: whatever pyxb refuses, the templates refuse.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
import pyxb
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from payments.gateways.authorize_net import anet_sdk, anet_xml
from payments.gateways.authorize_net.anet_xml import CardData, Credentials, OpaqueData, ProfileRef
from payments.gateways.tokens import TEST_TOKENS

SETTINGS = settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

# XML 1.0's Char production (surrogates excluded), with the characters that need escaping made likely.
XML_CHARS = st.one_of(
    st.sampled_from("&<>\"'\t\n\r ;#]"),
    st.characters(min_codepoint=0x20, max_codepoint=0x7E),
    st.characters(min_codepoint=0x20, max_codepoint=0xD7FF),
    st.characters(min_codepoint=0xE000, max_codepoint=0xFFFD),
    st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF),
)


def text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(XML_CHARS, min_size=min_size, max_size=max_size)


def optional(strategy: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | strategy


DIGITS = st.text("0123456789", min_size=1, max_size=20)
AMOUNTS = st.one_of(
    st.decimals(min_value=Decimal("0.01"), max_value=Decimal("99999999.99"), places=2),  # USD, EUR, ...
    st.decimals(min_value=1, max_value=10**10, places=0),  # JPY
    st.decimals(min_value=Decimal("0.001"), max_value=Decimal("9999999.999"), places=3),  # BHD, KWD
    st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: d.is_normal() or d.is_zero()),
)
CREDENTIALS = st.builds(Credentials, api_login_id=text(0, 30), transaction_key=text(0, 40))
TEST_CARDS = st.sampled_from([CardData(c.number, c.expiry, c.card_code) for c in TEST_TOKENS.values()])
CARDS = TEST_CARDS | st.builds(
    CardData, number=text(4, 16), expiry=text(4, 7), code=optional(st.text("0123456789", min_size=3, max_size=4))
)
OPAQUE = st.builds(OpaqueData, descriptor=st.just("COMMON.ACCEPT.INAPP.PAYMENT") | text(), value=text(1, 200))
PROFILES = st.builds(ProfileRef, customer_profile_id=DIGITS, payment_profile_id=DIGITS)


def assert_same(name: str, **kwargs) -> bytes:
    expected = getattr(anet_sdk, name)(**kwargs)
    document = getattr(anet_xml, name)(**kwargs)
    assert document == expected
    return document


def assert_same_or_both_refuse(name: str, **kwargs) -> None:
    try:
        expected = getattr(anet_sdk, name)(**kwargs)
    except pyxb.PyXBException:
        event("refused")
        with pytest.raises(anet_xml.InvalidRequestValue):
            getattr(anet_xml, name)(**kwargs)
        return
    event("accepted")
    assert getattr(anet_xml, name)(**kwargs) == expected


@SETTINGS
@given(
    auth=CREDENTIALS,
    capture=st.booleans(),
    amount=AMOUNTS,
    currency=st.sampled_from(["USD", "EUR", "GBP", "JPY", "CAD"]) | text(0, 5),
    reference=text(1, 20),
    source=CARDS | OPAQUE | PROFILES,
    description=optional(text(1, 255)),
    customer_id=optional(text(1, 20)),
    customer_email=optional(text(1, 255)),
    bill_to_zip=optional(text(0, 20)),
    duplicate_window=st.integers(min_value=0, max_value=28800),
)
def test_charge_is_the_sdks_document(**kwargs):
    document = assert_same("charge", **kwargs)
    root = etree.fromstring(document)  # and it is well-formed XML in the API's namespace
    assert root.tag == f"{{{anet_xml.NAMESPACE}}}createTransactionRequest"


@SETTINGS
@given(auth=CREDENTIALS, transaction_id=text(0, 30), amount=AMOUNTS, duplicate_window=st.integers(0, 28800))
def test_prior_auth_capture_is_the_sdks_document(**kwargs):
    assert_same("capture", **kwargs)


@SETTINGS
@given(
    auth=CREDENTIALS,
    transaction_id=text(0, 30),
    amount=AMOUNTS,
    card_number=st.text("0123456789", min_size=4, max_size=4) | text(4, 16),
    reference=optional(text(0, 20)),
    duplicate_window=st.integers(0, 28800),
)
def test_refund_is_the_sdks_document(**kwargs):
    assert_same("refund", **kwargs)


@SETTINGS
@given(auth=CREDENTIALS, transaction_id=text(0, 30))
def test_void_is_the_sdks_document(**kwargs):
    assert_same("void", **kwargs)


@SETTINGS
@given(auth=CREDENTIALS, transaction_id=DIGITS)
def test_transaction_details_is_the_sdks_document(**kwargs):
    assert_same("transaction_details", **kwargs)


@SETTINGS
@given(auth=CREDENTIALS, customer_profile_id=DIGITS)
def test_customer_profile_is_the_sdks_document(**kwargs):
    assert_same("customer_profile", **kwargs)


# --- values outside the XSD's facets: refused by both ---------------------------------------------

ANY_AMOUNT = AMOUNTS | st.decimals(allow_nan=False, allow_infinity=False) | st.just(Decimal("1E-1000000"))
ANY_ID = DIGITS | text(0, 25) | st.just("12\n")


@SETTINGS
@given(
    auth=CREDENTIALS,
    capture=st.booleans(),
    amount=ANY_AMOUNT,
    currency=text(0, 5),
    reference=text(0, 25),
    source=st.builds(CardData, number=text(0, 20), expiry=text(0, 9), code=optional(ANY_ID))
    | OPAQUE
    | st.builds(ProfileRef, customer_profile_id=ANY_ID, payment_profile_id=ANY_ID),
    description=optional(text(0, 300)),
    customer_id=optional(text(0, 25)),
    customer_email=optional(text(0, 300)),
    bill_to_zip=optional(text(0, 25)),
    duplicate_window=st.integers(0, 28800),
)
def test_charge_refuses_what_the_sdk_refuses(**kwargs):
    assert_same_or_both_refuse("charge", **kwargs)


@SETTINGS
@given(
    auth=CREDENTIALS,
    transaction_id=text(0, 30),
    amount=ANY_AMOUNT,
    card_number=text(0, 20),
    reference=optional(text(0, 25)),
    duplicate_window=st.integers(0, 28800),
)
def test_refund_and_capture_refuse_what_the_sdk_refuses(**kwargs):
    assert_same_or_both_refuse("refund", **kwargs)
    assert_same_or_both_refuse(
        "capture", auth=kwargs["auth"], transaction_id="1", amount=kwargs["amount"], duplicate_window=0
    )


@SETTINGS
@given(auth=CREDENTIALS, transaction_id=ANY_ID, customer_profile_id=ANY_ID)
def test_reads_refuse_what_the_sdk_refuses(auth, transaction_id, customer_profile_id):
    assert_same_or_both_refuse("transaction_details", auth=auth, transaction_id=transaction_id)
    assert_same_or_both_refuse("customer_profile", auth=auth, customer_profile_id=customer_profile_id)


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("charge", {"reference": "r" * 21}),
        ("charge", {"description": "d" * 256}),
        ("charge", {"customer_id": "c" * 21}),
        ("charge", {"customer_email": "e" * 256}),
        ("charge", {"bill_to_zip": "z" * 21}),
        ("charge", {"amount": Decimal("1E-1000000")}),
        ("charge", {"source": CardData("411", "2031-12", "123")}),
        ("charge", {"source": CardData("4111111111111111", "2031-12", "12a")}),
        ("charge", {"source": ProfileRef("١٢٣", "1")}),
        ("charge", {"source": ProfileRef("1", "")}),
        ("transaction_details", {"transaction_id": "12a"}),
        ("customer_profile", {"customer_profile_id": ""}),
    ],
)
def test_known_out_of_range_values_are_refused_by_both(name, kwargs):
    auth = Credentials("login", "key")
    base = {
        "charge": {
            "auth": auth,
            "capture": True,
            "amount": Decimal("10.00"),
            "currency": "USD",
            "reference": "ref",
            "source": CardData("4111111111111111", "2031-12", "123"),
            "description": None,
            "customer_id": None,
            "customer_email": None,
            "bill_to_zip": None,
            "duplicate_window": 0,
        },
        "transaction_details": {"auth": auth, "transaction_id": "123"},
        "customer_profile": {"auth": auth, "customer_profile_id": "123"},
    }[name]
    with pytest.raises(pyxb.PyXBException):
        getattr(anet_sdk, name)(**(base | kwargs))
    with pytest.raises(anet_xml.InvalidRequestValue):
        getattr(anet_xml, name)(**(base | kwargs))
    assert_same(name, **base)  # the same request with the default value goes through both


def test_credentials_repr_hides_the_key():
    assert "secret" not in repr(Credentials("login", "secret"))
