"""The emulated account's customer profiles (CIM): storing a card after a $0 validation, reading a profile."""

from __future__ import annotations

from .host import StateHost
from .records import (
    CustomerProfile,
    PaymentProfile,
    ProfileAnswer,
    StoredCard,
    TransactionAnswer,
    TransactionRequest,
)


class ProfilesMixin(StateHost):
    """Part of :class:`~.state.SandboxState` (its lock, records and bookkeeping; card checks from TransactionsMixin)."""

    # customer profiles (CIM) -----------------------------------------------------------------------

    def _validate_card(self, req: TransactionRequest, mode: str) -> tuple[StoredCard | None, str, ProfileAnswer | None]:
        """Check a card for storing: (card, direct response, refusal)."""
        probe = TransactionRequest("authOnlyTransaction", amount_text="0.00", **_payment_fields(req))
        card = self._payment_card(probe)
        if isinstance(card, TransactionAnswer):
            if card.error is not None:
                return None, "", ProfileAnswer(error=card.error)
            direct = _direct_response(card, probe)
            if mode == "none":
                return None, "", ProfileAnswer(error=("E00013", card.reason_text or "The field is invalid."))
            return (
                None,
                direct,
                ProfileAnswer(validation=[direct], error=("E00027", "The transaction was unsuccessful.")),
            )
        if mode != "liveMode":
            if mode == "testMode":
                ok = TransactionAnswer(
                    response_code=1, reason_code=1, account_number=card.masked, account_type=card.brand
                )
                return card, _direct_response(ok, probe), None
            return card, "", None
        answer = self._decide(card, probe.card.card_code if probe.card else "")
        direct = _direct_response(answer, probe)
        if answer.response_code not in (1, 4):
            return (
                None,
                direct,
                ProfileAnswer(validation=[direct], error=("E00027", "The transaction was unsuccessful.")),
            )
        return card, direct, None

    def create_customer_profile(
        self,
        *,
        merchant_customer_id: str,
        email: str,
        description: str,
        payment: TransactionRequest | None,
        customer_type: str = "individual",
        default: bool = False,
        validation_mode: str = "none",
    ) -> ProfileAnswer:
        with self._lock:
            if not (merchant_customer_id or email or description):
                return ProfileAnswer(error=("E00041", "One or more fields must contain a value."))
            # the first profile with this merchantCustomerId, or without one and with this email and description
            existing = (
                self._customers_by_merchant_id.get(merchant_customer_id)
                if merchant_customer_id
                else self._customers_by_contact.get((email, description))
            )
            if existing is not None:
                return ProfileAnswer(
                    error=("E00039", f"A duplicate record with ID {existing.customer_profile_id} already exists.")
                )
            card, direct = None, ""
            if payment is not None:
                card, direct, refusal = self._validate_card(payment, validation_mode)
                if refusal is not None:
                    return refusal
            profile = CustomerProfile(self._new_id("_next_profile"), merchant_customer_id, email, description)
            self.customers[profile.customer_profile_id] = profile
            self._index_customer(profile)
            answer = ProfileAnswer(customer_profile_id=profile.customer_profile_id)
            if card is not None:
                stored = self._add_payment_profile(profile, card, customer_type, default)
                answer.payment_profile_ids.append(stored.payment_profile_id)
                if direct:
                    answer.validation.append(direct)
            self._touch("customer", profile.customer_profile_id, profile)
            self._commit()
        return answer

    def create_payment_profile(
        self,
        *,
        customer_profile_id: str,
        payment: TransactionRequest,
        customer_type: str = "individual",
        default: bool = False,
        validation_mode: str = "none",
    ) -> ProfileAnswer:
        with self._lock:
            profile = self.customers.get(customer_profile_id)
            if profile is None:
                return ProfileAnswer(error=("E00040", "The record cannot be found."))
            card, direct, refusal = self._validate_card(payment, validation_mode)
            if refusal is not None:
                refusal.customer_profile_id = customer_profile_id
                return refusal
            assert card is not None  # no refusal: the card passed the checks
            for payment_profile_id in profile.payment_profile_ids:
                stored = self.payment_profiles[payment_profile_id].card
                if (stored.last_four, stored.expiry, stored.brand) == (card.last_four, card.expiry, card.brand):
                    return ProfileAnswer(
                        customer_profile_id=customer_profile_id,
                        payment_profile_ids=[payment_profile_id],
                        error=("E00039", "A duplicate customer payment profile already exists."),
                    )
            added = self._add_payment_profile(profile, card, customer_type, default)
            self._touch("customer", profile.customer_profile_id, profile)
            self._commit()
        return ProfileAnswer(
            customer_profile_id=customer_profile_id,
            payment_profile_ids=[added.payment_profile_id],
            validation=[direct] if direct else [],
        )

    def _add_payment_profile(
        self, profile: CustomerProfile, card: StoredCard, customer_type: str, default: bool
    ) -> PaymentProfile:
        stored = PaymentProfile(
            self._new_id("_next_payment_profile"),
            profile.customer_profile_id,
            card,
            customer_type or "individual",
            default or not profile.payment_profile_ids,
        )
        self.payment_profiles[stored.payment_profile_id] = stored
        profile.payment_profile_ids.append(stored.payment_profile_id)
        self._touch("payment", stored.payment_profile_id, stored)
        return stored

    def _index_customer(self, profile: CustomerProfile) -> None:
        """Index a profile just added to ``customers`` (the lookups below read these, not every profile).

        Each index keeps the first profile in ``customers``' order, which is the one a scan would find.
        """
        self._customer_positions.setdefault(profile.customer_profile_id, len(self._customer_positions))
        if profile.merchant_customer_id:
            self._customers_by_merchant_id.setdefault(profile.merchant_customer_id, profile)
        else:
            self._customers_by_contact.setdefault((profile.email, profile.description), profile)
        if profile.email:
            self._customers_by_email.setdefault(profile.email, profile)

    def customer_profile(
        self, *, customer_profile_id: str = "", merchant_customer_id: str = "", email: str = ""
    ) -> tuple[CustomerProfile, list[PaymentProfile]] | None:
        """The first profile (in ``customers``' order) with this id or merchantCustomerId, else by email alone."""
        with self._lock:
            if customer_profile_id or merchant_customer_id:
                candidates = [
                    self.customers.get(customer_profile_id) if customer_profile_id else None,
                    self._customers_by_merchant_id.get(merchant_customer_id) if merchant_customer_id else None,
                ]
            else:
                candidates = [self._customers_by_email.get(email) if email else None]
            found = [p for p in candidates if p is not None]
            if not found:
                return None
            profile = min(found, key=lambda p: self._customer_positions[p.customer_profile_id])
            return profile, [self.payment_profiles[i] for i in profile.payment_profile_ids]


def _payment_fields(req: TransactionRequest) -> dict:
    return {
        "card": req.card,
        "opaque_descriptor": req.opaque_descriptor,
        "opaque_value": req.opaque_value,
        "zip": req.zip,
        "customer_id": req.customer_id,
        "customer_email": req.customer_email,
    }


def _direct_response(answer: TransactionAnswer, req: TransactionRequest) -> str:
    """The AIM-style comma-delimited reply CIM returns for a validation authorization."""
    values = [
        str(answer.response_code),
        "1",
        str(answer.reason_code),
        answer.reason_text,
        answer.auth_code,
        answer.avs or "P",
        answer.trans_id,
        "none",
        "Test transaction for ValidateCustomerPaymentProfile.",
        "0.00",
        "CC",
        "auth_only",
        req.customer_id,
    ]
    values += [""] * 7 + [req.zip, "", "", "", req.customer_email]
    values += [""] * 13 + [answer.cvv, "", answer.account_number, answer.account_type]
    return ",".join(values)
