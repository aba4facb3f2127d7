"""The Authorize.Net emulator's account: the one copy of its credentials.

The emulator (:mod:`payments.gateways.sandbox`) accepts these unless told otherwise, and EasyPay's
settings fall back to them, so ``make run`` works with no configuration. They are public: production
settings refuse them against a real Authorize.Net endpoint. A leaf module (no imports), so settings
can read it without loading the emulator or the adapter.
"""

EMULATOR_API_LOGIN_ID = "easypay-sandbox"
EMULATOR_TRANSACTION_KEY = "easypaysandbox16"
EMULATOR_SIGNATURE_KEY = (
    "EASYPAYSANDBOXSIGNATUREKEY"
    "0000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000"
)
