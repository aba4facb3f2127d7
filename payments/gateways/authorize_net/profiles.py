"""The gateway's customer profiles (CIM): storing a card for later charges, reading a stored card back."""

from __future__ import annotations

import logging
import re
from typing import TYPE_CHECKING, Any

from authorizenet import apicontractsv1 as api

from ..base import GatewayError, Outcome, ProfileResult, Refusal
from . import anet_xml
from .anet_xml import Credentials
from .codes import DUPLICATE_PROFILE, INVALID_SOURCE_CODES
from .replies import brand_of, find, findall, first_message, last_four_of, profile_failure_outcome, text_at
from .transport import NoReply

if TYPE_CHECKING:
    from ..tokens import TestCard
    from .replies import Node

logger = logging.getLogger(__package__)  # one logger for the whole adapter

_DUPLICATE_ID = re.compile(r"\bID (\d+)\b")


class CustomerProfiles:
    """Part of :class:`~.gateway.AuthorizeNetGateway` (its credentials, sources and calls)."""

    credentials: Credentials

    if TYPE_CHECKING:
        # defined by AuthorizeNetGateway
        def _payment_source(
            self,
            *,
            card_token: str | None,
            customer_profile_id: str | None,
            payment_profile_id: str | None,
            is_test: bool,
        ) -> tuple[Any, Any, TestCard | None]: ...
        def _sdk_document(self, request: Any, element_name: str) -> bytes: ...
        def _call(self, document: bytes) -> Node: ...
        def _read(self, document: bytes, element_name: str) -> Node | None: ...

    def customer_profile_create(self, *, customer_id: str, email: str, card_token: str, is_test: bool) -> ProfileResult:
        """Store the card in a CIM customer profile (validated: testMode in test, liveMode live).

        When the processor already has a profile for ``customer_id`` (E00039) the card is added to
        it as another payment profile; an identical card already there is returned as is.
        """
        payment, _, card = self._payment_source(
            card_token=card_token, customer_profile_id=None, payment_profile_id=None, is_test=is_test
        )
        payment_profile = api.customerPaymentProfileType(customerType="individual", payment=payment)
        payment_profile.defaultPaymentProfile = True
        if card is not None and card.zip:
            payment_profile.billTo = api.customerAddressType(zip=card.zip)
        profile = api.customerProfileType(
            merchantCustomerId=customer_id[:20] or None,
            email=email or None,
            description=None if (customer_id or email) else "EasyPay customer",
        )
        profile.paymentProfiles.append(payment_profile)
        validation = "testMode" if is_test else "liveMode"
        request = api.createCustomerProfileRequest(profile=profile, validationMode=validation)
        try:
            response = self._call(self._sdk_document(request, "createCustomerProfileRequest"))
        except NoReply as exc:
            return ProfileResult(
                outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR, message=exc.message, error_code=exc.code
            )
        result_code, code, text = first_message(response)
        profile_id = text_at(response, "customerProfileId")
        payment_profile_id = None
        if result_code == "Ok":
            payment_profile_id = text_at(response, "customerPaymentProfileIdList/numericString")
        elif code == DUPLICATE_PROFILE and (match := _DUPLICATE_ID.search(text)):
            profile_id = match.group(1)
            added = api.createCustomerPaymentProfileRequest(
                customerProfileId=profile_id, paymentProfile=payment_profile, validationMode=validation
            )
            try:
                response = self._call(self._sdk_document(added, "createCustomerPaymentProfileRequest"))
            except NoReply as exc:
                return ProfileResult(
                    outcome=Outcome.UNKNOWN if exc.sent else Outcome.ERROR,
                    customer_profile_id=profile_id,
                    message=exc.message,
                    error_code=exc.code,
                )
            result_code, code, text = first_message(response)
            payment_profile_id = text_at(response, "customerPaymentProfileId")
            if code == DUPLICATE_PROFILE and payment_profile_id:  # this very card is already stored
                result_code, code = "Ok", None
        if result_code != "Ok" or not (profile_id and payment_profile_id):
            outcome = profile_failure_outcome(response, code)
            logger.info("authorize.net profile create: outcome=%s error_code=%s", outcome, code)
            return ProfileResult(
                outcome=outcome,
                customer_profile_id=profile_id,
                message=text,
                error_code=code,
                refusal=Refusal.INVALID_PAYMENT_SOURCE if code in INVALID_SOURCE_CODES else None,
            )
        last_four, brand = (
            (card.last_four, card.brand) if card is not None else self._stored_card(profile_id, payment_profile_id)
        )
        logger.info(
            "authorize.net profile create: customer_profile_id=%s payment_profile_id=%s", profile_id, payment_profile_id
        )
        return ProfileResult(
            outcome=Outcome.APPROVED,
            customer_profile_id=profile_id,
            payment_profile_id=payment_profile_id,
            card_last_four=last_four,
            card_brand=brand,
            message=text,
        )

    def _stored_card(self, profile_id: str, payment_profile_id: str) -> tuple[str | None, str | None]:
        """Last four and brand of a stored card (an Accept.js nonce does not tell us before storing)."""
        try:
            document = anet_xml.customer_profile(self.credentials, customer_profile_id=profile_id)
            response = self._read(document, "getCustomerProfileRequest")
        except GatewayError:
            return None, None
        for stored in findall(response, "profile/paymentProfiles"):
            if text_at(stored, "customerPaymentProfileId") == payment_profile_id:
                card = find(stored, "payment/creditCard")
                return last_four_of(text_at(card, "cardNumber")), brand_of(text_at(card, "cardType"))
        return None, None
