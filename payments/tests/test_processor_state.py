"""When the processor's records and EasyPay's disagree: a transaction id handed out twice, a
transaction the processor no longer knows, and the emulator's state kept across restarts."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta

import pytest

from payments.gateways import processor_environment
from payments.gateways.sandbox.cards import _auth_code, _network_trans_id
from payments.gateways.sandbox.state import (
    CAPTURED,
    DECLINE_ZIP,
    DECLINED,
    HELD,
    HELD_CARD,
    REFUND_SETTLED,
    SETTLED,
    VOIDED,
    CardInput,
    SandboxState,
    TransactionRequest,
)
from payments.models import Payment, Refund
from payments.tests.factories import PaymentFactory, create

pytestmark = pytest.mark.django_db


def test_a_transaction_id_already_held_by_another_payment_fails_the_new_payment_cleanly(api_client, sandbox):
    first = create(api_client)
    assert first.status_code == 201
    txn = first.json()["data"]["processor_transaction_id"]
    sandbox.state._next_trans = int(txn) - 1  # a processor that lost its state hands the id out again

    second = create(api_client, amount="5.00")

    assert second.status_code == 502, second.content
    error = second.json()["error"]
    assert error["code"] == "processor_error"
    assert txn in error["message"] and "already holds" in error["message"]
    payment = Payment.objects.get(pk=second.json()["data"]["id"])
    assert payment.status == "failed"
    assert payment.processor_transaction_id == ""
    assert Payment.objects.get(pk=first.json()["data"]["id"]).status == "captured"
    assert Payment.objects.filter(processor_transaction_id=txn).count() == 1


def test_the_same_transaction_id_in_another_environment_is_allowed(merchant):
    common = {"merchant": merchant, "amount": "1.00", "currency": "USD", "processor_transaction_id": "42"}
    PaymentFactory(processor_environment="sandbox:a", **common)
    PaymentFactory(processor_environment="sandbox:b", **common)
    PaymentFactory(processor_environment="sandbox:a", **{**common, "processor_transaction_id": ""})
    PaymentFactory(processor_environment="sandbox:a", **{**common, "processor_transaction_id": ""})
    assert Payment.objects.count() == 4


def test_refunding_a_transaction_the_processor_does_not_know_says_so(api_client, captured, sandbox):
    sandbox.state.reset()  # the processor forgot everything (an emulator restarted without its state)

    response = api_client.post(f"/api/v1/payments/{captured['id']}/refund", {}, format="json")

    assert response.status_code == 502, response.content
    error = response.json()["error"]
    assert error["code"] == "processor_error"
    assert error["details"]["reason"] == "transaction_unknown_at_processor"
    assert error["details"]["processor_transaction_id"] == captured["processor_transaction_id"]
    assert "no record" in error["message"] and "not settled" not in error["message"]
    payment = Payment.objects.get(pk=captured["id"])
    assert payment.status == "captured" and payment.refunded_amount == 0
    assert Refund.objects.get(payment=payment).status == "failed"


def test_a_refund_of_an_unsettled_payment_is_still_the_409(api_client, sandbox, settings):
    sandbox.state.settle_delay_seconds = 3600
    payment = create(api_client).json()["data"]
    response = api_client.post(f"/api/v1/payments/{payment['id']}/refund", {}, format="json")
    assert response.status_code == 409
    assert "not settled" in response.json()["error"]["message"]


def test_cancelling_a_transaction_the_processor_does_not_know_says_so(api_client, sandbox):
    payment = create(api_client, capture=False).json()["data"]
    assert payment["status"] == "authorized"
    sandbox.state.reset()

    response = api_client.post(f"/api/v1/payments/{payment['id']}/cancel", {}, format="json")

    assert response.status_code == 502, response.content
    assert response.json()["error"]["details"]["reason"] == "transaction_unknown_at_processor"
    assert Payment.objects.get(pk=payment["id"]).status == "authorized"


def test_payments_record_their_processor_environment(api_client, sandbox, settings):
    payment = create(api_client).json()["data"]
    assert Payment.objects.get(pk=payment["id"]).processor_environment == processor_environment()
    assert processor_environment() == f"emulator:{settings.AUTHORIZE_NET_API_LOGIN_ID}"
    settings.AUTHORIZE_NET_ENDPOINT = "sandbox"
    assert processor_environment().startswith("sandbox:")
    settings.AUTHORIZE_NET_ENDPOINT = "https://api2.authorize.net/xml/v1/request.api"
    assert processor_environment().startswith("production:")
    settings.AUTHORIZE_NET_ENVIRONMENT = "acme-live"
    assert processor_environment() == "acme-live"


def test_the_emulator_state_file_keeps_transactions_and_ids_across_restarts(tmp_path):
    path = str(tmp_path / "anet.sqlite3")
    request = TransactionRequest(
        transaction_type="authCaptureTransaction",
        amount_text="10.00",
        card=CardInput(number="4111111111111111", expiry="2035-12"),
        invoice_number="inv1",
    )
    first = SandboxState(api_login_id="l", transaction_key="k", db_path=path)
    answer = first.create_transaction(request)
    assert answer.response_code == 1 and int(answer.trans_id) > 0
    first.close()
    again = SandboxState(api_login_id="l", transaction_key="k", db_path=path)
    assert again.transaction(answer.trans_id) is not None  # known after the restart
    later = again.create_transaction(TransactionRequest(**{**request.__dict__, "invoice_number": "inv2"}))
    assert later.response_code == 1
    assert int(later.trans_id) > int(answer.trans_id)  # ids continue, never handed out twice


class _Clock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self):
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += timedelta(seconds=seconds)


def _charge(**changes) -> TransactionRequest:
    values = {
        "transaction_type": "authCaptureTransaction",
        "amount_text": "10.00",
        "card": CardInput(number="4111111111111111", expiry="2035-12"),
        "invoice_number": "inv1",
        "customer_id": "c1",
        "zip": "",
        "duplicate_window": 120,
    }
    return TransactionRequest(**{**values, **changes})


@pytest.mark.parametrize(
    "change",
    [
        {"transaction_type": "authOnlyTransaction"},
        {"amount_text": "10.01"},
        {"card": CardInput(number="5424000000000015", expiry="2035-12")},
        {"invoice_number": "inv2"},
        {"customer_id": "c2"},
    ],
    ids=["type", "amount", "card", "invoice", "customer"],
)
def test_the_emulator_calls_a_repeat_a_duplicate_only_when_every_field_of_the_rule_matches(change):
    clock = _Clock()
    state = SandboxState(api_login_id="l", transaction_key="k", clock=clock)
    assert state.create_transaction(_charge()).response_code == 1
    for n in range(200):  # other transactions in between do not hide the first one
        assert state.create_transaction(_charge(invoice_number=f"other{n}")).response_code == 1

    assert state.create_transaction(_charge(**change)).response_code == 1  # one field differs: a new charge
    repeat = state.create_transaction(_charge())
    assert (repeat.response_code, repeat.reason_code) == (3, 11)  # Authorize.Net's duplicate transaction


def test_the_emulator_duplicate_window_ends_and_survives_a_restart(tmp_path):
    clock = _Clock()
    path = str(tmp_path / "anet.sqlite3")
    state = SandboxState(api_login_id="l", transaction_key="k", clock=clock, db_path=path)
    assert state.create_transaction(_charge()).response_code == 1
    clock.advance(100)
    assert state.create_transaction(_charge()).reason_code == 11
    state.close()

    again = SandboxState(api_login_id="l", transaction_key="k", clock=clock, db_path=path)
    assert again.create_transaction(_charge()).reason_code == 11  # still within the 120 s after the restart
    clock.advance(21)
    assert again.create_transaction(_charge()).response_code == 1  # the window has passed
    assert again.create_transaction(_charge(duplicate_window=0)).response_code == 1  # no window: never a duplicate
    assert again.create_transaction(_charge()).reason_code == 11  # measured from the newest of them


# --- settlement ------------------------------------------------------------------------------------


def _batch_of(state: SandboxState, batch) -> set[str]:
    assert batch is not None
    _assert_reads_match_a_scan(state)
    return {t.trans_id for t in state.transactions.values() if t.batch_id == batch.batch_id}


def _assert_reads_match_a_scan(state: SandboxState) -> None:
    """The unsettled list and each batch's list are what a scan of every transaction, in order, gives."""
    every = list(state.transactions.values())
    assert state.unsettled() == [t for t in every if not t.batch_id]
    assert state.unsettled(pending_approval_only=True) == [t for t in every if not t.batch_id and t.status == HELD]
    for batch_id in state.batches:
        assert state.batch_transactions(batch_id) == [t for t in every if t.batch_id == batch_id]
    assert state.batch_transactions("no-such-batch") is None


def test_the_emulator_settles_every_transaction_once_its_delay_has_passed_and_nothing_else():
    clock = _Clock()
    state = SandboxState(api_login_id="l", transaction_key="k", clock=clock, settle_delay_seconds=60)

    def record(**changes) -> str:
        return state.create_transaction(_charge(**changes)).trans_id

    sale = record(invoice_number="sale")
    captured_later = record(transaction_type="authOnlyTransaction", invoice_number="auth1")
    open_auth = record(transaction_type="authOnlyTransaction", invoice_number="auth2")
    voided_later = record(transaction_type="authOnlyTransaction", invoice_number="auth3")
    declined = record(invoice_number="declined", zip=DECLINE_ZIP)
    held = record(invoice_number="held", card=CardInput(number=HELD_CARD, expiry="2035-12"))
    clock.advance(30)
    late_sale = record(invoice_number="late")
    capture = TransactionRequest("priorAuthCaptureTransaction", ref_trans_id=captured_later, amount_text="4.00")
    assert state.create_transaction(capture).response_code == 1
    assert state.create_transaction(TransactionRequest("voidTransaction", ref_trans_id=voided_later)).response_code == 1
    clock.advance(40)  # 70 s after the first ones, 40 s after the changes

    assert _batch_of(state, state.settle(force=False)) == {sale, declined}
    assert state.settle(force=False) is None  # the rest has not waited 60 s yet
    clock.advance(20)
    assert _batch_of(state, state.settle(force=False)) == {late_sale, captured_later, voided_later}
    statuses = {t: state.transactions[t].status for t in (sale, declined, late_sale, captured_later, voided_later)}
    assert statuses == {
        sale: SETTLED,
        declined: DECLINED,
        late_sale: SETTLED,
        captured_later: SETTLED,
        voided_later: VOIDED,
    }
    assert {t.trans_id for t in state.unsettled()} == {open_auth, held}  # open and held ones never settle

    refund = TransactionRequest(
        "refundTransaction", amount_text="5.00", card=CardInput("1111", "XXXX"), ref_trans_id=sale
    )
    refund_id = state.create_transaction(refund).trans_id
    assert state.review(held, "approve") is not None
    assert state.settle(force=False) is None
    assert _batch_of(state, state.settle(force=True)) == {refund_id, held}
    assert (state.transactions[refund_id].status, state.transactions[held].status) == (REFUND_SETTLED, SETTLED)
    assert state.settle(force=True) is None
    assert [t.trans_id for t in state.unsettled()] == [open_auth]
    _assert_reads_match_a_scan(state)


def test_a_restarted_emulator_settles_what_was_pending_and_keeps_its_order(tmp_path):
    path = str(tmp_path / "anet.sqlite3")
    first = SandboxState(api_login_id="l", transaction_key="k", db_path=path, settle_delay_seconds=3600)
    auth = first.create_transaction(_charge(transaction_type="authOnlyTransaction", invoice_number="a")).trans_id
    sale = first.create_transaction(_charge(invoice_number="s")).trans_id
    assert first.create_transaction(TransactionRequest("priorAuthCaptureTransaction", ref_trans_id=auth)).trans_id
    pending = first.create_transaction(_charge(invoice_number="p")).trans_id
    assert _batch_of(first, first.settle(force=True)) == {auth, sale, pending}
    later = first.create_transaction(_charge(invoice_number="later")).trans_id
    first.close()

    again = SandboxState(api_login_id="l", transaction_key="k", db_path=path)
    # a batch writes its transactions in the account's order, so they come back in it
    assert [row["trans_id"] for row in again.snapshot()] == [auth, sale, pending, later]
    assert again.transactions[later].status == CAPTURED
    _assert_reads_match_a_scan(again)
    assert _batch_of(again, again.settle(force=False)) == {later}  # still pending when the emulator stopped
    again.reset()
    assert again.settle(force=True) is None
    again.close()


# --- generated codes -------------------------------------------------------------------------------


def test_auth_codes_and_network_transaction_ids_are_random_letters_and_digits():
    codes = [_auth_code() for _ in range(2000)]
    network_ids = [_network_trans_id() for _ in range(2000)]

    alphabet = set(string.ascii_uppercase + string.digits)
    assert {len(c) for c in codes} == {6} and {len(n) for n in network_ids} == {23}
    assert set("".join(codes)) == alphabet and set("".join(network_ids)) == alphabet  # every one drawn
    assert len(set(codes)) > 1990 and len(set(network_ids)) == 2000
    # every position varies over the whole alphabet (not a fixed or shifted digit)
    assert all({n[i] for n in network_ids} == alphabet for i in range(23))


# --- customer profiles -----------------------------------------------------------------------------


def _first_profile_by_scan(state, *, customer_profile_id="", merchant_customer_id="", email=""):
    """The lookup rule as a scan of every profile in order (what the indexes must answer)."""
    for profile in state.customers.values():
        if (
            (customer_profile_id and profile.customer_profile_id == customer_profile_id)
            or (merchant_customer_id and profile.merchant_customer_id == merchant_customer_id)
            or (email and not customer_profile_id and not merchant_customer_id and profile.email == email)
        ):
            return profile
    return None


def test_customer_profiles_are_found_and_refused_as_duplicates_as_a_scan_of_them_all_would(tmp_path):
    path = str(tmp_path / "anet.sqlite3")
    state = SandboxState(api_login_id="l", transaction_key="k", db_path=path)
    card = TransactionRequest("authOnlyTransaction", card=CardInput("4111111111111111", "2035-12"))
    created = {}
    for merchant_id, email, description in [
        ("m1", "a@example.com", ""),
        ("m2", "a@example.com", "second"),
        ("", "a@example.com", "contact only"),
        ("", "b@example.com", ""),
        ("", "", "description only"),
        ("m3", "", ""),
    ]:
        answer = state.create_customer_profile(
            merchant_customer_id=merchant_id, email=email, description=description, payment=card
        )
        assert answer.error is None
        created[(merchant_id, email, description)] = answer.customer_profile_id
    # a payment profile added later rewrites the first profile's row, so it is stored last
    first = created[("m1", "a@example.com", "")]
    other_card = TransactionRequest("authOnlyTransaction", card=CardInput("5424000000000015", "2035-12"))
    assert state.create_payment_profile(customer_profile_id=first, payment=other_card).error is None

    reloaded = SandboxState(api_login_id="l", transaction_key="k", db_path=path)
    assert list(reloaded.customers)[-1] == first  # rows come back in the order last written, not by id
    for candidate in (state, reloaded):
        for merchant_id, email, description in [
            ("m1", "x@example.com", "x"),  # same merchantCustomerId: a duplicate whatever else differs
            ("m3", "", ""),
            ("", "a@example.com", "contact only"),  # no merchant id: same email and description
            ("", "b@example.com", ""),
            ("", "", "description only"),
            ("", "a@example.com", ""),  # m1 has this contact but a merchant id: not a duplicate
            ("m9", "a@example.com", "contact only"),
        ]:
            existing = next(
                (
                    p
                    for p in candidate.customers.values()
                    if (merchant_id and p.merchant_customer_id == merchant_id)
                    or (
                        not merchant_id
                        and not p.merchant_customer_id
                        and (p.email, p.description) == (email, description)
                    )
                ),
                None,
            )
            answer = candidate.create_customer_profile(
                merchant_customer_id=merchant_id, email=email, description=description, payment=None
            )
            if existing is None:
                assert answer.error is None, (merchant_id, email, description)
            else:
                assert answer.error == (
                    "E00039",
                    f"A duplicate record with ID {existing.customer_profile_id} already exists.",
                )
        ids = list(candidate.customers)
        for lookup in [
            {"customer_profile_id": ids[1]},
            {"customer_profile_id": "999"},
            {"merchant_customer_id": "m2"},
            {"merchant_customer_id": "m9"},
            {"email": "a@example.com"},
            {"email": "b@example.com"},
            {"email": "nobody@example.com"},
            {"customer_profile_id": ids[-1], "merchant_customer_id": "m1"},  # the earlier of the two
            {"customer_profile_id": ids[0], "merchant_customer_id": "m9"},
            {"customer_profile_id": ids[1], "merchant_customer_id": "m1"},
            {"merchant_customer_id": "m1", "email": "b@example.com"},  # email only counts alone
            {},
        ]:
            found = candidate.customer_profile(**lookup)
            expected = _first_profile_by_scan(candidate, **lookup)
            assert (found[0] if found else None) is expected, lookup
            if found:
                assert [p.payment_profile_id for p in found[1]] == expected.payment_profile_ids
    state.close()
    reloaded.close()


def test_reads_stay_right_when_the_emulator_hands_a_transaction_id_out_again():
    state = SandboxState(api_login_id="l", transaction_key="k", settle_delay_seconds=3600)
    first = state.create_transaction(_charge(invoice_number="first")).trans_id
    batch = state.settle(force=True)
    state._next_trans = int(first) - 1  # as test_a_transaction_id_already_held_by_another_payment does

    again = state.create_transaction(_charge(invoice_number="again")).trans_id

    assert again == first and state.transactions[again].invoice_number == "again"
    _assert_reads_match_a_scan(state)
    assert state.batch_transactions(batch.batch_id) == [] and state.unsettled() == [state.transactions[again]]
    assert _batch_of(state, state.settle(force=True)) == {again}
