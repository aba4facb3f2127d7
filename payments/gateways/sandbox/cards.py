"""The emulator's published sandbox test data (cards, AVS and card-code triggers, reason texts) and card arithmetic."""

from __future__ import annotations

import secrets
import string
from decimal import ROUND_HALF_UP, Decimal

# --- published sandbox test data -----------------------------------------------------------------

TEST_CARD_NUMBERS = frozenset(
    {
        "4111111111111111",
        "4242424242424242",
        "4007000000027",
        "4012888818888",
        "5424000000000015",
        "2223000010309703",
        "2223000010309711",
        "370000000000002",
        "6011000000000012",
        "3088000000000017",
        "38000000000006",
    }
)
HELD_CARD = "4007000000027"  # stands in for a fraud filter set to "hold for review"
PROCESSOR_ERROR_CARD = "4012888818888"  # Authorize.Net's own example for reason 19
DECLINE_ZIP = "46282"
AVS_BY_ZIP = {
    "46201": "A",
    "46203": "E",
    "46204": "G",
    "46205": "N",
    "46206": "P",
    "46207": "R",
    "46208": "S",
    "46209": "U",
    "46211": "W",
    "46214": "X",
    "46217": "Z",
}
CVV_BY_CODE = {"900": "M", "901": "N", "902": "S", "903": "U", "904": "P"}
CVV_DECLINE_CODE = "901"  # the merchant's card-code filter rejects N (reason 65)
ACCEPT_DESCRIPTORS = frozenset(
    {
        "COMMON.ACCEPT.INAPP.PAYMENT",
        "COMMON.APPLE.INAPP.PAYMENT",
        "COMMON.GOOGLE.INAPP.PAYMENT",
        "COMMON.VCO.ONLINE.PAYMENT",
    }
)
OPAQUE_CARD_LAST_FOUR = "1111"  # what a decrypted Accept.js nonce stands for here (a Visa)

# Response reason texts as Authorize.Net words them (double space in 19 included).
REASONS = {
    1: "This transaction has been approved.",
    2: "This transaction has been declined.",
    5: "A valid amount is required.",
    6: "The credit card number is invalid.",
    7: "The credit card expiration date is invalid.",
    8: "The credit card has expired.",
    11: "A duplicate transaction has been submitted.",
    16: "The transaction cannot be found.",
    19: "An error occurred during processing.  Please try again.",
    33: "Credit card number cannot be left blank.",
    47: "The amount requested for settlement cannot be greater than the original amount authorized.",
    54: "The referenced transaction does not meet the criteria for issuing a credit.",
    55: "The sum of credits against the referenced transaction would exceed original debit amount.",
    65: "This transaction has been declined.",
    78: "The card code is invalid.",
    252: "Your order has been received. Thank you for your business!",
    310: "This transaction has already been voided.",
    311: "This transaction has already been captured.",
}

# transactionStatus values used here (a subset of the 24 in the XSD)
AUTHORIZED = "authorizedPendingCapture"
CAPTURED = "capturedPendingSettlement"
SETTLED = "settledSuccessfully"
REFUND_PENDING = "refundPendingSettlement"
REFUND_SETTLED = "refundSettledSuccessfully"
VOIDED = "voided"
DECLINED = "declined"
HELD = "FDSPendingReview"
GENERAL_ERROR = "generalError"
SETTLING = {CAPTURED: SETTLED, REFUND_PENDING: REFUND_SETTLED}  # what a batch turns them into
BATCHED_AS_IS = frozenset({VOIDED, DECLINED, GENERAL_ERROR})  # swept into the batch unchanged

DEFAULT_DUPLICATE_WINDOW = 120  # seconds, when the request sends no duplicateWindow
MAX_DUPLICATE_WINDOW = 28800
CENT = Decimal("0.01")


def luhn_ok(number: str) -> bool:
    if not number.isdigit() or not 13 <= len(number) <= 19:
        return False
    total = 0
    for index, char in enumerate(reversed(number)):
        digit = int(char)
        if index % 2:
            digit = digit * 2 - 9 if digit > 4 else digit * 2
        total += digit
    return total % 10 == 0


def card_type(number: str) -> str:
    """Authorize.Net's accountType name for a card number."""
    if number.startswith("4"):
        return "Visa"
    if number[:2] in {"34", "37"}:
        return "AmericanExpress"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4] or 0) <= 2720:
        return "MasterCard"
    if number.startswith(("6011", "65")) or 644 <= int(number[:3] or 0) <= 649:
        return "Discover"
    if 3528 <= int(number[:4] or 0) <= 3589 or number[:4] in {"3088", "3096", "3112", "3158", "3337"}:
        return "JCB"
    if number[:2] in {"36", "38"} or 300 <= int(number[:3] or 0) <= 305:
        return "DinersClub"
    return "Visa"


def parse_expiry(text: str) -> tuple[int, int] | None:
    """(year, month) from YYYY-MM, MMYY, MM/YY or MMYYYY."""
    text = text.strip()
    try:
        if len(text) == 7 and text[4] == "-":
            year, month = int(text[:4]), int(text[5:])
        elif len(text) == 4 and text.isdigit():
            year, month = 2000 + int(text[2:]), int(text[:2])
        elif len(text) == 5 and text[2] == "/":
            year, month = 2000 + int(text[3:]), int(text[:2])
        elif len(text) == 6 and text.isdigit():
            year, month = int(text[2:]), int(text[:2])
        else:
            return None
    except ValueError:
        return None
    return (year, month) if 1 <= month <= 12 else None


def money(value: Decimal) -> str:
    return str(value.quantize(CENT, rounding=ROUND_HALF_UP))


_CODE_ALPHABET = string.ascii_uppercase + string.digits
# Random bytes become characters through a table: 252 = 7 * 36 of the 256 values map evenly onto the
# alphabet (value % 36) and the other four are dropped, so every character is uniform and independent,
# the distribution of ``secrets.choice`` per character, for one read of the system's randomness.
_KEPT = 256 - 256 % len(_CODE_ALPHABET)
_CODE_TABLE = bytes(ord(_CODE_ALPHABET[value % len(_CODE_ALPHABET)]) if value < _KEPT else 0 for value in range(256))
_DROPPED = bytes(range(_KEPT, 256))


def _random_code(length: int) -> str:
    """``length`` characters drawn uniformly and independently from A-Z0-9."""
    code = b""
    while len(code) < length:
        code += secrets.token_bytes(length + 8).translate(_CODE_TABLE, _DROPPED)
    return code[:length].decode("ascii")


def _auth_code() -> str:
    return _random_code(6)


def _network_trans_id() -> str:
    return _random_code(23)
