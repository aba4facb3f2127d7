"""The gateway answers in EasyPay's words (state, kind, settled, refusal), whatever the processor calls them.

Driven through ``get_gateway()`` against the local Authorize.Net emulator, like the adapter's own tests.
"""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from payments.gateways import ChargeRequest, Outcome, Refusal, TransactionKind, TransactionState, get_gateway
from payments.gateways.authorize_net_notifications import transaction_notice


def charge(token: str = "tok_visa", *, capture: bool = True, amount: str = "10.00"):
    request = ChargeRequest(
        amount=Decimal(amount),
        currency="USD",
        capture=capture,
        reference="v_" + uuid.uuid4().hex[:16],
        card_token=token,
    )
    return get_gateway().charge(request)


@pytest.fixture
def manual_settlement(anet_sandbox):
    anet_sandbox.configure(settle_delay_seconds=3600)
    return anet_sandbox


def test_an_authorization_then_its_void(manual_settlement):
    gateway = get_gateway()
    auth = charge(capture=False)

    details = gateway.transaction_details(transaction_id=auth.transaction_id)
    assert (details.state, details.kind, details.settled, details.approved) == (
        TransactionState.AUTHORIZED,
        TransactionKind.CHARGE,
        False,
        True,
    )

    assert gateway.void(transaction_id=auth.transaction_id).approved
    assert gateway.transaction_details(transaction_id=auth.transaction_id).state is TransactionState.VOIDED


def test_a_sale_settles_and_its_refund_is_a_refund(manual_settlement):
    gateway = get_gateway()
    sale = charge()
    assert gateway.transaction_details(transaction_id=sale.transaction_id).state is TransactionState.CAPTURED

    manual_settlement.state.settle()
    settled = gateway.transaction_details(transaction_id=sale.transaction_id)
    assert (settled.state, settled.settled) == (TransactionState.CAPTURED, True)

    refund = gateway.refund(transaction_id=sale.transaction_id, amount=Decimal("4.00"), card_last_four="1111")
    details = gateway.transaction_details(transaction_id=refund.transaction_id)
    assert (details.state, details.kind, details.settled) == (TransactionState.REFUNDED, TransactionKind.REFUND, False)
    assert refund.refusal is None


def test_a_decline_is_declined_and_not_approved(anet_sandbox):
    declined = charge("tok_declined")

    details = get_gateway().transaction_details(transaction_id=declined.transaction_id)

    assert declined.outcome is Outcome.DECLINED
    assert (details.state, details.approved) == (TransactionState.DECLINED, False)


def test_a_refund_of_an_unsettled_charge_is_refused_as_not_settled(manual_settlement):
    sale = charge()

    refused = get_gateway().refund(transaction_id=sale.transaction_id, amount=Decimal("1.00"), card_last_four="1111")

    assert refused.outcome is Outcome.ERROR
    assert refused.refusal is Refusal.NOT_SETTLED


def test_a_summary_carries_a_state_but_no_kind(manual_settlement):
    sale = charge()

    [summary] = [s for s in get_gateway().unsettled_transactions() if s.transaction_id == sale.transaction_id]

    assert (summary.state, summary.kind) == (TransactionState.CAPTURED, None)


def test_a_notification_names_its_transaction_and_references():
    notice = transaction_notice(
        {"payload": {"entityName": "transaction", "id": " 123 ", "invoiceNumber": "ref_1", "merchantReferenceId": ""}}
    )
    assert (notice.about_transaction, notice.transaction_id, notice.references) == (True, "123", ("ref_1",))

    other = transaction_notice({"payload": {"entityName": "customerProfile", "id": "9"}})
    assert (other.about_transaction, other.subject, other.transaction_id) == (False, "customerProfile", "")

    assert transaction_notice({"payload": "garbled"}).about_transaction  # no entityName: a transaction
