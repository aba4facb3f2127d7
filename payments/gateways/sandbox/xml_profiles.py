"""The emulator's customer profile (CIM) API: create a profile or a payment profile, read a profile."""

from __future__ import annotations

from lxml import etree

from .state import (
    SandboxState,
    TransactionRequest,
)
from .xmldoc import (
    NOT_FOUND,
    SUCCESS,
    ApiError,
    _find,
    _messages,
    _node,
    _payment,
    _root,
    _sub,
    _text,
)


def _payment_profile_request(element: etree._Element | None) -> TransactionRequest | None:
    if element is None or _find(element, "payment") is None:
        return None
    req = TransactionRequest("authOnlyTransaction")
    _payment(element, req)
    return req


def _create_customer_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    profile = _find(root, "profile")
    payment_profile = _find(profile, "paymentProfiles")
    payment = _payment_profile_request(payment_profile)
    if payment is not None:
        payment.customer_id = _text(profile, "merchantCustomerId")
        payment.customer_email = _text(profile, "email")
    answer = state.create_customer_profile(
        merchant_customer_id=_text(profile, "merchantCustomerId"),
        email=_text(profile, "email"),
        description=_text(profile, "description"),
        payment=payment,
        customer_type=_text(payment_profile, "customerType"),
        default=_text(payment_profile, "defaultPaymentProfile").lower() == "true",
        validation_mode=_text(root, "validationMode") or "none",
    )
    reply = _root("createCustomerProfileResponse", _text(root, "refId"))
    _messages(reply, *(("Error", *answer.error) if answer.error else ("Ok", *SUCCESS)))
    _sub(reply, "customerProfileId", answer.customer_profile_id)
    ids = _node(reply, "customerPaymentProfileIdList")
    for payment_profile_id in answer.payment_profile_ids:
        _sub(ids, "numericString", payment_profile_id)
    _node(reply, "customerShippingAddressIdList")
    if answer.validation:
        responses = _node(reply, "validationDirectResponseList")
        for direct in answer.validation:
            _sub(responses, "string", direct)
    return reply


def _create_payment_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    element = _find(root, "paymentProfile")
    payment = _payment_profile_request(element)
    if payment is None:
        raise ApiError("E00029", "Payment information is required.")
    answer = state.create_payment_profile(
        customer_profile_id=_text(root, "customerProfileId"),
        payment=payment,
        customer_type=_text(element, "customerType"),
        default=_text(element, "defaultPaymentProfile").lower() == "true",
        validation_mode=_text(root, "validationMode") or "none",
    )
    reply = _root("createCustomerPaymentProfileResponse", _text(root, "refId"))
    _messages(reply, *(("Error", *answer.error) if answer.error else ("Ok", *SUCCESS)))
    _sub(reply, "customerProfileId", answer.customer_profile_id)
    _sub(reply, "customerPaymentProfileId", answer.payment_profile_ids[0] if answer.payment_profile_ids else "")
    _sub(reply, "validationDirectResponse", answer.validation[0] if answer.validation else "")
    return reply


def _get_customer_profile(state: SandboxState, root: etree._Element) -> etree._Element:
    found = state.customer_profile(
        customer_profile_id=_text(root, "customerProfileId"),
        merchant_customer_id=_text(root, "merchantCustomerId"),
        email=_text(root, "email"),
    )
    reply = _root("getCustomerProfileResponse", _text(root, "refId"))
    if found is None:
        _messages(reply, "Error", *NOT_FOUND)
        return reply
    customer, payment_profiles = found
    _messages(reply, "Ok", *SUCCESS)
    p = _node(reply, "profile")
    _sub(p, "merchantCustomerId", customer.merchant_customer_id)
    _sub(p, "description", customer.description)
    _sub(p, "email", customer.email)
    _sub(p, "customerProfileId", customer.customer_profile_id)
    for stored in payment_profiles:
        pp = _node(p, "paymentProfiles")
        _sub(pp, "customerType", stored.customer_type)
        if stored.card.zip:
            _sub(_node(pp, "billTo"), "zip", stored.card.zip)
        _sub(pp, "customerProfileId", customer.customer_profile_id)
        _sub(pp, "customerPaymentProfileId", stored.payment_profile_id)
        _sub(pp, "defaultPaymentProfile", "true" if stored.default else "false")
        card = _node(_node(pp, "payment"), "creditCard")
        _sub(card, "cardNumber", stored.card.masked)
        _sub(card, "expirationDate", "XXXX")
        _sub(card, "cardType", stored.card.brand)
    _sub(p, "profileType", "regular")
    return reply
