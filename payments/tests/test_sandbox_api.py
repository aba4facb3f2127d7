"""The emulator speaks Authorize.Net's XML API: the unmodified SDK's controllers work against it.

These tests use the SDK exactly as its own samples do (controller, setenvironment, execute,
getresponse), so they run one at a time and against a server of their own: the SDK's pyxb
binding refuses transaction keys longer than Authorize.Net's 16 characters.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
import requests
from authorizenet import apicontractsv1 as api
from authorizenet import apicontrollers

from payments.gateways.sandbox import SandboxServer
from payments.gateways.sandbox.xmlapi import NS

LOGIN = "sdkSandboxLogin"
KEY = "Sdk16CharKey0000"


@pytest.fixture(scope="module")
def server():
    with SandboxServer(api_login_id=LOGIN, transaction_key=KEY) as running:
        yield running


@pytest.fixture(autouse=True)
def clean(server):
    server.reset()
    yield
    server.reset()


def execute(controller_class, request, url, *, key=KEY):
    request.merchantAuthentication = api.merchantAuthenticationType(name=LOGIN, transactionKey=key)
    controller = controller_class(request)
    controller.setenvironment(url)  # after construction: every controller resets it to the sandbox URL
    controller.execute()
    return controller.getresponse()


def card_request(transaction_type="authCaptureTransaction", amount="15.00", number="4111111111111111", **extra):
    tr = api.transactionRequestType(
        transactionType=transaction_type,
        amount=Decimal(amount),
        payment=api.paymentType(
            creditCard=api.creditCardType(cardNumber=number, expirationDate="2035-12", cardCode="999")
        ),
        order=api.orderType(invoiceNumber=extra.pop("invoice", "INV-" + uuid.uuid4().hex[:8])),
        **extra,
    )
    return api.createTransactionRequest(refId="sdk-ref", transactionRequest=tr)


def text(node) -> str:
    return node.text


def test_sdk_purchase_and_details(server):
    response = execute(apicontrollers.createTransactionController, card_request(invoice="INV-1"), server.url)

    assert text(response.messages.resultCode) == "Ok"
    assert text(response.refId) == "sdk-ref"
    tr = response.transactionResponse
    assert (text(tr.responseCode), text(tr.accountNumber), text(tr.accountType)) == ("1", "XXXX1111", "Visa")
    assert text(tr.messages.message.description) == "This transaction has been approved."
    trans_id = text(tr.transId)

    details = execute(
        apicontrollers.getTransactionDetailsController, api.getTransactionDetailsRequest(transId=trans_id), server.url
    )

    assert text(details.messages.resultCode) == "Ok"
    assert text(details.transaction.transactionStatus) == "settledSuccessfully"
    assert text(details.transaction.order.invoiceNumber) == "INV-1"
    assert text(details.transaction.authAmount) in ("15.00", "15.0")
    assert text(details.transaction.payment.creditCard.cardNumber) == "XXXX1111"


def test_sdk_decline_carries_errors_and_e00027(server):
    request = card_request()
    request.transactionRequest.billTo = api.customerAddressType(zip="46282")

    response = execute(apicontrollers.createTransactionController, request, server.url)

    assert text(response.messages.resultCode) == "Error"
    assert text(response.messages.message.code) == "E00027"
    assert text(response.transactionResponse.responseCode) == "2"
    assert text(response.transactionResponse.errors.error.errorCode) == "2"


def test_sdk_bad_credentials_get_a_root_error_response(server):
    response = execute(apicontrollers.createTransactionController, card_request(), server.url, key="wrongKey")

    assert not hasattr(response, "transactionResponse")  # an ErrorResponse (the SDK renames the root)
    assert text(response.messages.resultCode) == "Error"
    assert text(response.messages.message.code) == "E00007"
    assert server.state.snapshot() == []


def test_sdk_without_duplicate_window_gets_the_two_minute_default(server):
    first = execute(apicontrollers.createTransactionController, card_request(invoice="SAME"), server.url)
    second = execute(apicontrollers.createTransactionController, card_request(invoice="SAME"), server.url)

    assert text(first.transactionResponse.responseCode) == "1"
    assert text(second.transactionResponse.responseCode) == "3"
    assert text(second.transactionResponse.errors.error.errorCode) == "11"


def test_sdk_lists_batches_and_transactions(server):
    server.configure(settle_delay_seconds=3600)
    execute(apicontrollers.createTransactionController, card_request(invoice="A"), server.url)
    execute(apicontrollers.createTransactionController, card_request("authOnlyTransaction", invoice="B"), server.url)

    unsettled = execute(
        apicontrollers.getUnsettledTransactionListController, api.getUnsettledTransactionListRequest(), server.url
    )
    assert text(unsettled.totalNumInResultSet) == "2"
    assert [text(t.invoiceNumber) for t in unsettled.transactions.transaction] == ["A", "B"]
    assert [text(t.transactionStatus) for t in unsettled.transactions.transaction] == [
        "capturedPendingSettlement",
        "authorizedPendingCapture",
    ]

    batch = server.state.settle()
    batches = execute(apicontrollers.getSettledBatchListController, api.getSettledBatchListRequest(), server.url)
    assert text(batches.batchList.batch.batchId) == batch.batch_id
    assert text(batches.batchList.batch.settlementState) == "settledSuccessfully"

    listed = execute(
        apicontrollers.getTransactionListController, api.getTransactionListRequest(batchId=batch.batch_id), server.url
    )
    assert [text(t.invoiceNumber) for t in listed.transactions.transaction] == ["A"]
    assert text(listed.transactions.transaction.transactionStatus) == "settledSuccessfully"


def test_sdk_customer_profiles(server):
    payment_profile = api.customerPaymentProfileType(
        customerType="individual",
        payment=api.paymentType(creditCard=api.creditCardType(cardNumber="5424000000000015", expirationDate="2035-12")),
    )
    profile = api.customerProfileType(merchantCustomerId="sdk-cust", email="sdk@example.com")
    profile.paymentProfiles.append(payment_profile)

    created = execute(
        apicontrollers.createCustomerProfileController,
        api.createCustomerProfileRequest(profile=profile, validationMode="testMode"),
        server.url,
    )
    assert text(created.messages.resultCode) == "Ok"
    profile_id = text(created.customerProfileId)
    payment_profile_id = text(created.customerPaymentProfileIdList.numericString)
    assert text(created.validationDirectResponseList.string).startswith("1,1,1,")

    duplicate = execute(
        apicontrollers.createCustomerProfileController,
        api.createCustomerProfileRequest(profile=api.customerProfileType(merchantCustomerId="sdk-cust")),
        server.url,
    )
    assert text(duplicate.messages.message.code) == "E00039"
    assert profile_id in text(duplicate.messages.message["text"])  # "text" clashes with .text

    fetched = execute(
        apicontrollers.getCustomerProfileController,
        api.getCustomerProfileRequest(customerProfileId=profile_id),
        server.url,
    )
    assert text(fetched.profile.email) == "sdk@example.com"
    assert text(fetched.profile.paymentProfiles.customerPaymentProfileId) == payment_profile_id
    assert text(fetched.profile.paymentProfiles.payment.creditCard.cardNumber) == "XXXX0015"

    tr = api.transactionRequestType(
        transactionType="authCaptureTransaction",
        amount=Decimal("3.00"),
        profile=api.customerProfilePaymentType(
            customerProfileId=profile_id, paymentProfile=api.paymentProfile(paymentProfileId=payment_profile_id)
        ),
    )
    charged = execute(
        apicontrollers.createTransactionController, api.createTransactionRequest(transactionRequest=tr), server.url
    )
    assert text(charged.transactionResponse.accountNumber) == "XXXX0015"


# --- the wire format -------------------------------------------------------------------------------


def post(server, body: bytes, content_type="application/xml"):
    return requests.post(server.url, data=body, headers={"Content-Type": content_type}, timeout=5)


def details_request(login=LOGIN, key=KEY, trans_id="1", namespace=NS, root="getTransactionDetailsRequest"):
    return (
        f'<?xml version="1.0" encoding="utf-8"?><{root} xmlns="{namespace}"><merchantAuthentication>'
        f"<name>{login}</name><transactionKey>{key}</transactionKey></merchantAuthentication>"
        f"<transId>{trans_id}</transId></{root}>"
    ).encode()


def test_replies_have_a_bom_the_default_namespace_and_http_200_even_for_errors(server):
    response = post(server, details_request(key="nope"))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert response.content.startswith(b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><ErrorResponse')
    assert f'xmlns="{NS}"'.encode() in response.content
    assert b"<code>E00007</code>" in response.content


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (details_request(), "text/plain", b"E00002"),
        (b"<not-xml", "application/xml", b"E00003"),
        (details_request(namespace="urn:other"), "text/xml", b"E00045"),
        (details_request(root="chargeEverythingRequest"), "application/xml", b"E00004"),
        (details_request(trans_id="424242"), "application/xml", b"E00040"),
    ],
)
def test_request_level_errors(server, body, content_type, code):
    response = post(server, body, content_type)

    assert response.status_code == 200
    assert b"<resultCode>Error</resultCode>" in response.content
    assert b"<code>" + code + b"</code>" in response.content


def test_unsupported_transaction_types_say_so(server):
    request = card_request("captureOnlyTransaction")
    request.merchantAuthentication = api.merchantAuthenticationType(name=LOGIN, transactionKey=KEY)
    body = request.toxml(encoding="utf-8", element_name="createTransactionRequest").replace(b"ns1:", b"")
    body = body.replace(b":ns1", b"")

    response = post(server, body)

    assert b"<code>E00003</code>" in response.content
    assert b"not supported by the EasyPay sandbox emulator" in response.content


def test_entities_are_not_expanded(server):
    body = (
        b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY login "'
        + LOGIN.encode()
        + b'">]>'
        + details_request(login="&login;").split(b"?>", 1)[1]
    )

    response = post(server, body)

    assert b"<code>E00007</code>" in response.content or b"<code>E00003</code>" in response.content


# --- reading requests ------------------------------------------------------------------------------


def test_request_fields_are_read_as_element_path_finds_them():
    from lxml import etree

    from payments.gateways.sandbox.xmldoc import _find, _text

    document = etree.fromstring(
        f'<r xmlns="{NS}" xmlns:o="urn:other"><o:a><b>foreign</b></o:a><a><c>no b</c></a><!-- a -->'
        "<a><b> first <d>deep</d></b><b>second</b></a><a><b>third</b></a><e/></r>"
    )
    namespaces = {"a": NS}
    for path in ("a", "a/b", "a/b/d", "a/c", "a/x", "e", "e/b", "x/b", "b"):
        expected = document.find("/".join(f"a:{part}" for part in path.split("/")), namespaces)
        assert _find(document, path) is expected, path
    assert _text(document, "a/b") == "first"
    assert (_text(document, "a/x"), _text(None, "a"), _find(None, "a")) == ("", "", None)


# --- writing replies -------------------------------------------------------------------------------


def _answers():
    from payments.gateways.sandbox.state import TransactionAnswer

    yield TransactionAnswer(error=("E00040", "Customer Profile ID or Customer Payment Profile ID not found."))
    yield TransactionAnswer(error=("E00114", ""))
    card = {"account_number": "XXXX1111", "account_type": "Visa"}
    for code, reason in ((1, 1), (1, 311), (2, 2), (2, 65), (3, 11), (3, 19), (4, 252), (1, 999)):
        yield TransactionAnswer(
            response_code=code, reason_code=reason, trans_id="60000000001", auth_code="AB12CD", avs="Y", **card
        )
    yield TransactionAnswer(response_code=3, reason_code=5)  # nothing else known: empty and left-out elements
    yield TransactionAnswer(response_code=1, reason_code=1, trans_id="7", ref_trans_id="6", cvv="M", **card)
    yield TransactionAnswer(response_code=1, reason_code=1, network_trans_id="A1B2C3D4E5F6G7H8I9J0K1L", **card)


def test_the_transaction_reply_written_as_text_is_the_element_tree_byte_for_byte():
    from payments.gateways.sandbox.xmlapi import _transaction_reply, _transaction_reply_text
    from payments.gateways.sandbox.xmldoc import serialize

    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    for ref_id in ("", "sdk-ref", printable[:20], printable[20:40], printable[40:60], printable[60:], "&<>\"'"):
        for answer in _answers():
            text = _transaction_reply_text(ref_id, answer)
            assert text == serialize(_transaction_reply(ref_id, answer)), (ref_id, answer)


def test_a_transaction_reply_with_other_characters_takes_the_element_tree():
    from payments.gateways.sandbox.state import TransactionAnswer
    from payments.gateways.sandbox.xmlapi import _transaction_reply_text

    approved = TransactionAnswer(response_code=1, reason_code=1, trans_id="1")
    for ref_id in ("caf\u00e9", "line\r", "tab\t", "new\nline", "\U0001f600"):
        assert _transaction_reply_text(ref_id, approved) is None


def test_charges_with_plain_and_other_reference_ids_are_answered_alike_over_http(server):
    from payments.gateways.authorize_net import anet_xml

    auth = anet_xml.Credentials(LOGIN, KEY)
    for reference in ("plain-ref", "caf\u00e9 & <co>"):
        body = anet_xml.charge(
            auth,
            capture=True,
            amount=Decimal("12.00"),
            currency="USD",
            reference=reference,
            source=anet_xml.CardData("4111111111111111", "2035-12", "123"),
            description=None,
            customer_id=None,
            customer_email=None,
            bill_to_zip="46282",  # declined: the errors branch
            duplicate_window=0,
        )
        reply = post(server, body).content
        escaped = reference.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        assert f"<refId>{escaped}</refId>".encode() in reply
        assert b"<errors><error><errorCode>2</errorCode><errorText>This transaction has been declined." in reply
