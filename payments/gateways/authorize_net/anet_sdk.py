"""The reference for :mod:`payments.gateways.authorize_net.anet_xml`: the same requests built with the SDK's bindings.

Each function takes exactly the arguments of its twin in ``anet_xml`` and returns the document the
official SDK writes for that request: the ``apicontractsv1`` pyxb objects, serialised by pyxb's
validating generation (``sdk_quirks.serialize``, which checks the XSD's content model). The adapter
sent these documents until the templates replaced them; the Hypothesis test in
``payments/tests/test_anet_xml.py`` and the gateway tests' fixture compare the two byte for byte.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyxb
import pyxb.utils.domutils
from authorizenet import apicontractsv1 as api
from authorizenet.constants import constants as sdk_constants

from .anet_xml import CardData, Credentials, OpaqueData, ProfileRef


def _element_type(binding: Any, name: str) -> Any:
    expanded = pyxb.namespace.ExpandedName(api.Namespace, name)
    return binding._ElementMap[expanded].elementBinding().typeDefinition()


# Authorize.Net issues 16-character transaction keys and the XSD caps the field there (and the login
# at 25), but the emulator's default key is longer. pyxb would refuse to build any request with it,
# so the credentials skip the length facet: a wrong key comes back as E00007 like any bad credential.
_LOGIN_TYPE = _element_type(api.merchantAuthenticationType, "name")
_KEY_TYPE = _element_type(api.merchantAuthenticationType, "transactionKey")


def merchant_authentication(api_login_id: str, transaction_key: str) -> Any:
    auth = api.merchantAuthenticationType()
    auth.name = _LOGIN_TYPE(api_login_id, _validate_constraints=False)
    auth.transactionKey = _KEY_TYPE(transaction_key, _validate_constraints=False)
    return auth


def _document(request: Any, element_name: str, auth: Credentials) -> bytes:
    request.merchantAuthentication = merchant_authentication(auth.api_login_id, auth.transaction_key)
    request.clientId = sdk_constants.clientId
    # pyxb's own validating generation, written out here rather than borrowed from the adapter: the
    # reference must not share the code it checks.
    bds = pyxb.utils.domutils.BindingDOMSupport(default_namespace=api.Namespace)
    return request.toDOM(bds, element_name=element_name).toxml(encoding="utf-8")


def _settings(duplicate_window: int) -> Any:
    settings = api.ArrayOfSetting()
    settings.setting.append(api.settingType(settingName="duplicateWindow", settingValue=str(duplicate_window)))
    return settings


def payment_type(source: CardData | OpaqueData) -> Any:
    if isinstance(source, CardData):
        return api.paymentType(
            creditCard=api.creditCardType(cardNumber=source.number, expirationDate=source.expiry, cardCode=source.code)
        )
    return api.paymentType(opaqueData=api.opaqueDataType(dataDescriptor=source.descriptor, dataValue=source.value))


def profile_payment_type(source: ProfileRef) -> Any:
    return api.customerProfilePaymentType(
        customerProfileId=source.customer_profile_id,
        paymentProfile=api.paymentProfile(paymentProfileId=source.payment_profile_id),
    )


def charge(
    auth: Credentials,
    *,
    capture: bool,
    amount: Decimal,
    currency: str,
    reference: str,
    source: CardData | OpaqueData | ProfileRef,
    description: str | None,
    customer_id: str | None,
    customer_email: str | None,
    bill_to_zip: str | None,
    duplicate_window: int,
) -> bytes:
    tr = api.transactionRequestType()
    tr.transactionType = "authCaptureTransaction" if capture else "authOnlyTransaction"
    tr.amount = amount
    tr.currencyCode = currency
    if isinstance(source, ProfileRef):
        tr.profile = profile_payment_type(source)
    else:
        tr.payment = payment_type(source)
    tr.order = api.orderType(invoiceNumber=reference, description=description)
    if customer_id is not None or customer_email is not None:
        tr.customer = api.customerDataType(id=customer_id, email=customer_email)
    if bill_to_zip is not None:
        tr.billTo = api.customerAddressType(zip=bill_to_zip)
    tr.transactionSettings = _settings(duplicate_window)
    request = api.createTransactionRequest(refId=reference, transactionRequest=tr)
    return _document(request, "createTransactionRequest", auth)


def capture(auth: Credentials, *, transaction_id: str, amount: Decimal, duplicate_window: int) -> bytes:
    tr = api.transactionRequestType(
        transactionType="priorAuthCaptureTransaction", amount=amount, refTransId=transaction_id
    )
    tr.transactionSettings = _settings(duplicate_window)
    return _document(api.createTransactionRequest(transactionRequest=tr), "createTransactionRequest", auth)


def refund(
    auth: Credentials,
    *,
    transaction_id: str,
    amount: Decimal,
    card_number: str,
    reference: str | None,
    duplicate_window: int,
) -> bytes:
    tr = api.transactionRequestType(
        transactionType="refundTransaction",
        amount=amount,
        payment=payment_type(CardData(number=card_number, expiry="XXXX")),
        refTransId=transaction_id,
    )
    if reference is not None:
        tr.order = api.orderType(invoiceNumber=reference)
    tr.transactionSettings = _settings(duplicate_window)
    request = api.createTransactionRequest(refId=reference, transactionRequest=tr)
    return _document(request, "createTransactionRequest", auth)


def void(auth: Credentials, *, transaction_id: str) -> bytes:
    tr = api.transactionRequestType(transactionType="voidTransaction", refTransId=transaction_id)
    return _document(api.createTransactionRequest(transactionRequest=tr), "createTransactionRequest", auth)


def transaction_details(auth: Credentials, *, transaction_id: str) -> bytes:
    return _document(api.getTransactionDetailsRequest(transId=transaction_id), "getTransactionDetailsRequest", auth)


def customer_profile(auth: Credentials, *, customer_profile_id: str) -> bytes:
    return _document(
        api.getCustomerProfileRequest(customerProfileId=customer_profile_id), "getCustomerProfileRequest", auth
    )
