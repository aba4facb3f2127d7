"""The emulated account's transactions: authorize, capture, refund, void, duplicates, fraud review."""

from __future__ import annotations

from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TypedDict

from .cards import (
    ACCEPT_DESCRIPTORS,
    AUTHORIZED,
    AVS_BY_ZIP,
    CAPTURED,
    CENT,
    CVV_BY_CODE,
    CVV_DECLINE_CODE,
    DECLINE_ZIP,
    DECLINED,
    DEFAULT_DUPLICATE_WINDOW,
    GENERAL_ERROR,
    HELD,
    HELD_CARD,
    MAX_DUPLICATE_WINDOW,
    OPAQUE_CARD_LAST_FOUR,
    PROCESSOR_ERROR_CARD,
    REFUND_PENDING,
    SETTLED,
    TEST_CARD_NUMBERS,
    VOIDED,
    _auth_code,
    _network_trans_id,
    card_type,
    luhn_ok,
    parse_expiry,
)
from .host import StateHost
from .records import (
    Event,
    StoredCard,
    Transaction,
    TransactionAnswer,
    TransactionRequest,
    duplicate_key,
)


class _CardEcho(TypedDict):
    """What every authorization answer repeats about the card."""

    avs: str
    cvv: str
    account_number: str
    account_type: str


class TransactionsMixin(StateHost):
    """Part of :class:`~.state.SandboxState` (its lock, records and bookkeeping)."""

    # transactions --------------------------------------------------------------------------------

    def create_transaction(self, req: TransactionRequest) -> TransactionAnswer:
        with self._lock:
            handler = {
                "authCaptureTransaction": self._authorize,
                "authOnlyTransaction": self._authorize,
                "priorAuthCaptureTransaction": self._prior_auth_capture,
                "refundTransaction": self._refund,
                "voidTransaction": self._void,
            }[req.transaction_type]
            answer = handler(req)
            if self.settle_delay_seconds <= 0:
                self._settle(force=True)
            events = self._commit()
        self._publish(events)
        return answer

    def _record(self, req: TransactionRequest, card: StoredCard, answer: TransactionAnswer, **values) -> Transaction:
        now = self.now()
        record = {
            "trans_id": self._new_id("_next_trans"),
            "transaction_type": req.transaction_type,
            "submitted_at": now,
            "updated_at": now,
            "account_number": card.masked,
            "account_type": card.brand,
            "currency": req.currency or "USD",
            "invoice_number": req.invoice_number,
            "description": req.description,
            "ref_id": req.ref_id,
            "customer_id": req.customer_id,
            "customer_email": req.customer_email,
            "zip": card.zip,
            "customer_profile_id": req.customer_profile_id,
            "payment_profile_id": req.payment_profile_id,
            "duplicate_window": req.duplicate_window,
            "response_code": answer.response_code,
            "reason_code": answer.reason_code,
            "reason_text": answer.reason_text,
            "auth_code": answer.auth_code,
            "avs": answer.avs,
            "cvv": answer.cvv,
            "network_trans_id": answer.network_trans_id,
        }
        tx = Transaction(**{**record, **values})
        self.transactions[tx.trans_id] = tx
        self._duplicates[tx.duplicate_key] = tx
        self._touch("transaction", tx.trans_id, tx)
        answer.trans_id = tx.trans_id
        return tx

    def _save(self, tx: Transaction) -> None:
        tx.updated_at = self.now()
        self._touch("transaction", tx.trans_id, tx)

    @staticmethod
    def _amount(text: str) -> Decimal | None:
        try:
            value = Decimal(text)
        except (InvalidOperation, TypeError):
            return None
        if not value.is_finite() or value < 0:
            return None
        return value.quantize(CENT, rounding=ROUND_HALF_UP)

    def _payment_card(self, req: TransactionRequest) -> StoredCard | TransactionAnswer:
        """The card a request pays with, or the answer refusing it."""
        if req.customer_profile_id or req.payment_profile_id:
            profile = self.payment_profiles.get(req.payment_profile_id)
            if profile is None or profile.customer_profile_id != req.customer_profile_id:
                return TransactionAnswer(
                    error=("E00040", "Customer Profile ID or Customer Payment Profile ID not found.")
                )
            return profile.card
        if req.opaque_value or req.opaque_descriptor:
            if req.opaque_descriptor not in ACCEPT_DESCRIPTORS or req.opaque_value.lower().startswith("invalid"):
                return TransactionAnswer(error=("E00114", "Invalid OTS Token."))
            token_expiry = f"{self.now().year + 3}-12"
            return StoredCard(OPAQUE_CARD_LAST_FOUR, "Visa", token_expiry, req.zip)
        if req.card is None or not req.card.number:
            return TransactionAnswer(response_code=3, reason_code=33)
        number = req.card.number.replace(" ", "")
        if not luhn_ok(number):
            return TransactionAnswer(response_code=3, reason_code=6)
        expiry = parse_expiry(req.card.expiry)
        if expiry is None:
            return TransactionAnswer(response_code=3, reason_code=7)
        now = self.now()
        if expiry < (now.year, now.month):
            return TransactionAnswer(response_code=3, reason_code=8)
        brand = card_type(number)
        code = req.card.card_code
        if code and (not code.isdigit() or len(code) != (4 if brand == "AmericanExpress" else 3)):
            return TransactionAnswer(response_code=3, reason_code=78)
        stored_number = number if number in TEST_CARD_NUMBERS else None
        return StoredCard(number[-4:], brand, f"{expiry[0]:04d}-{expiry[1]:02d}", req.zip, stored_number)

    def _decide(self, card: StoredCard, card_code: str) -> TransactionAnswer:
        """The processor's verdict for an authorization on this card (the sandbox's triggers)."""
        avs = AVS_BY_ZIP.get(card.zip, "Y") if card.zip else "P"
        cvv = CVV_BY_CODE.get(card_code, "M") if card_code else ""
        base: _CardEcho = {"avs": avs, "cvv": cvv, "account_number": card.masked, "account_type": card.brand}
        if card.number == PROCESSOR_ERROR_CARD:
            return TransactionAnswer(response_code=3, reason_code=19, **base)
        if card.zip == DECLINE_ZIP:
            return TransactionAnswer(response_code=2, reason_code=2, auth_code="000000", **base)
        if card_code == CVV_DECLINE_CODE:
            return TransactionAnswer(response_code=2, reason_code=65, auth_code="000000", **base)
        if card.number == HELD_CARD:
            return TransactionAnswer(response_code=4, reason_code=252, auth_code=_auth_code(), **base)
        return TransactionAnswer(
            response_code=1, reason_code=1, auth_code=_auth_code(), network_trans_id=_network_trans_id(), **base
        )

    def _duplicate_of(self, req: TransactionRequest, card: StoredCard, amount: Decimal) -> Transaction | None:
        window = (
            DEFAULT_DUPLICATE_WINDOW
            if req.duplicate_window is None
            else min(req.duplicate_window, MAX_DUPLICATE_WINDOW)
        )
        if window <= 0:
            return None
        since = self.now() - timedelta(seconds=window)
        # Authorize.Net's duplicate rule: the same type, amount, card, invoice, customer, zip and original
        # transaction within the window. Those fields never change after a transaction is recorded, so the
        # newest transaction of each combination is kept by that key (one lookup, not a scan of the window).
        key = duplicate_key(
            req.transaction_type, amount, card.masked, req.invoice_number, req.customer_id, card.zip, req.ref_trans_id
        )
        latest = self._duplicates.get(key)
        return latest if latest is not None and latest.submitted_at >= since else None

    def _authorize(self, req: TransactionRequest) -> TransactionAnswer:
        amount = self._amount(req.amount_text)
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5)
        card = self._payment_card(req)
        if isinstance(card, TransactionAnswer):
            return card
        if self._duplicate_of(req, card, amount) is not None:
            return TransactionAnswer(
                response_code=3, reason_code=11, account_number=card.masked, account_type=card.brand
            )
        card_code = req.card.card_code if req.card is not None else req.profile_card_code
        answer = self._decide(card, card_code)
        capture = req.transaction_type == "authCaptureTransaction"
        status = {
            1: CAPTURED if capture else AUTHORIZED,
            2: DECLINED,
            3: GENERAL_ERROR,
            4: HELD,
        }[answer.response_code]
        tx = self._record(
            req,
            card,
            answer,
            status=status,
            amount=amount,
            auth_amount=amount,
            settle_amount=amount if status == CAPTURED else Decimal("0.00"),
        )
        if status == HELD:
            self._events.append(Event("payment.fraud.held", tx, amount))
        else:
            kind = "authcapture" if capture else "authorization"
            self._events.append(Event(f"payment.{kind}.created", tx, amount))
        return answer

    def _reply_for(self, tx: Transaction, response_code: int, reason_code: int) -> TransactionAnswer:
        return TransactionAnswer(
            response_code=response_code,
            reason_code=reason_code,
            trans_id=tx.trans_id,
            ref_trans_id=tx.trans_id,
            auth_code=tx.auth_code if response_code == 1 else "",
            account_number=tx.account_number,
            account_type=tx.account_type,
        )

    def _prior_auth_capture(self, req: TransactionRequest) -> TransactionAnswer:
        tx = self.transactions.get(req.ref_trans_id)
        if tx is None or tx.transaction_type == "refundTransaction":
            return TransactionAnswer(response_code=3, reason_code=16)
        if tx.status in (CAPTURED, SETTLED):
            return self._reply_for(tx, 1, 311)
        if tx.status != AUTHORIZED:
            return TransactionAnswer(response_code=3, reason_code=16, ref_trans_id=tx.trans_id)
        amount = self._amount(req.amount_text) if req.amount_text else tx.auth_amount
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5)
        if amount > tx.auth_amount:
            return TransactionAnswer(
                response_code=3,
                reason_code=47,
                ref_trans_id=tx.trans_id,
                account_number=tx.account_number,
                account_type=tx.account_type,
            )
        tx.status, tx.settle_amount = CAPTURED, amount
        self._save(tx)
        self._events.append(Event("payment.priorAuthCapture.created", tx, amount))
        return self._reply_for(tx, 1, 1)

    def _refund(self, req: TransactionRequest) -> TransactionAnswer:
        original = self.transactions.get(req.ref_trans_id)
        last_four = (req.card.number if req.card else "")[-4:]
        if (
            original is None
            or original.transaction_type == "refundTransaction"
            or original.status != SETTLED
            or (req.card is not None and last_four != original.last_four)
            or (req.customer_profile_id and req.customer_profile_id != original.customer_profile_id)
        ):
            return TransactionAnswer(response_code=3, reason_code=54, ref_trans_id=req.ref_trans_id)
        amount = self._amount(req.amount_text)
        if amount is None or amount <= 0:
            return TransactionAnswer(response_code=3, reason_code=5, ref_trans_id=original.trans_id)
        if original.refunded_amount + amount > original.settle_amount:
            return TransactionAnswer(response_code=3, reason_code=55, ref_trans_id=original.trans_id)
        card = StoredCard(original.last_four, original.account_type, "XXXX", original.zip)
        if self._duplicate_of(req, card, amount) is not None:
            return TransactionAnswer(response_code=3, reason_code=11, ref_trans_id=original.trans_id)
        answer = TransactionAnswer(
            response_code=1,
            reason_code=1,
            ref_trans_id=original.trans_id,
            account_number=card.masked,
            account_type=card.brand,
        )
        refund = self._record(
            req,
            card,
            answer,
            status=REFUND_PENDING,
            amount=amount,
            auth_amount=amount,
            settle_amount=amount,
            ref_trans_id=original.trans_id,
            invoice_number=req.invoice_number or original.invoice_number,
            customer_profile_id=original.customer_profile_id,
            payment_profile_id=original.payment_profile_id,
        )
        original.refunded_amount += amount
        self._touch("transaction", original.trans_id, original)
        self._events.append(Event("payment.refund.created", refund, amount))
        return answer

    def _void(self, req: TransactionRequest) -> TransactionAnswer:
        tx = self.transactions.get(req.ref_trans_id)
        if tx is None:
            return TransactionAnswer(response_code=3, reason_code=16)
        if tx.status == VOIDED:
            return self._reply_for(tx, 1, 310)
        if tx.status not in (AUTHORIZED, CAPTURED, HELD, REFUND_PENDING):
            # settled (or never approved): nothing left to void; a settled one needs a refund
            return TransactionAnswer(response_code=3, reason_code=16, ref_trans_id=tx.trans_id)
        tx.status = VOIDED
        self._save(tx)
        if tx.transaction_type == "refundTransaction":
            original = self.transactions.get(tx.ref_trans_id)
            if original is not None:
                original.refunded_amount -= tx.settle_amount
                self._touch("transaction", original.trans_id, original)
        self._events.append(Event("payment.void.created", tx, tx.settle_amount or tx.auth_amount))
        return self._reply_for(tx, 1, 1)

    def review(self, trans_id: str, action: str) -> Transaction | None:
        """Approve or decline a transaction held for review (what the Merchant Interface does)."""
        with self._lock:
            tx = self.transactions.get(trans_id)
            if tx is None or tx.status != HELD or action not in ("approve", "decline"):
                return None
            if action == "approve":
                capture = tx.transaction_type == "authCaptureTransaction"
                tx.status = CAPTURED if capture else AUTHORIZED
                tx.settle_amount = tx.auth_amount if capture else Decimal("0.00")
                self._events.append(Event("payment.fraud.approved", tx, tx.auth_amount))
            else:
                tx.status = DECLINED
                self._events.append(Event("payment.fraud.declined", tx, tx.auth_amount))
            self._save(tx)
            if self.settle_delay_seconds <= 0:
                self._settle(force=True)
            events = self._commit()
        self._publish(events)
        return tx
