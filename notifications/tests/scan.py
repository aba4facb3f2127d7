"""Scans every message the test suite sends (email in Django's outbox or at the test SMTP server, SMS in
the memory backend or at the Twilio stand-in) for card numbers and secrets. The root conftest runs it
after every test, so a template or context that ever leaks one fails the test that sent it."""

from __future__ import annotations

import re

from django.conf import settings

# A card number stands alone (spaces or dashes allowed inside), never inside a longer hex word.
DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])")
# Ids (UUIDs, ntf_/evt_/pay_... hex) are random and may hold digit runs by chance: not card data.
IDS = re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b|\b[a-z]{2,4}_[0-9a-f]{12,32}\b")
SECRET_PATTERNS = {
    "API key": re.compile(r"ek_(?:test|live)_[0-9a-f]{16}\.[A-Za-z0-9_\-]{20,}"),
    "webhook secret": re.compile(r"whsec_[0-9a-f]{16,}"),
    "JWT": re.compile(r"eyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}"),
    "CVV field": re.compile(r"(?i)\b(?:cvv|cvc|card_?code)\b\s*[:=]\s*\d{3,4}"),
}
counts = {"email": 0, "sms": 0}


def luhn_ok(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def problems(text: str) -> list[str]:
    from payments.gateways.tokens import TEST_TOKENS

    found = []
    for match in DIGIT_RUN.finditer(IDS.sub(" ", text)):
        digits = re.sub(r"\D", "", match.group())
        if 13 <= len(digits) <= 19 and luhn_ok(digits):
            found.append(f"card-like number {match.group()!r}")
    for card in TEST_TOKENS.values():
        if card.number in text:
            found.append(f"test card number {card.number}")
    for name, pattern in SECRET_PATTERNS.items():
        if pattern.search(text):
            found.append(name)
    for name in ("SECRET_KEY", "AUTHORIZE_NET_TRANSACTION_KEY", "AUTHORIZE_NET_SIGNATURE_KEY", "TWILIO_AUTH_TOKEN"):
        value = getattr(settings, name)  # every name above is declared in config/settings
        if value and len(value) >= 8 and value in text:
            found.append(f"the {name} setting")
    return found


def check(kind: str, texts: list[str], where: str) -> None:
    counts[kind] += 1
    for text in texts:
        found = problems(text or "")
        assert not found, f"a {kind} sent {where} leaks {found}"


def check_email_message(message, where: str) -> None:
    """A Django EmailMessage (locmem outbox)."""
    # Message-ID is random digits by construction; every other header is scanned.
    headers = [str(v) for k, v in message.extra_headers.items() if k.lower() != "message-id"]
    texts = [message.subject, message.body, *message.to, *headers]
    texts += [content for content, _ in getattr(message, "alternatives", [])]
    check("email", texts, where)


def check_raw_email(raw: bytes, where: str) -> None:
    """A message as it reached the SMTP server: every decoded part."""
    import email
    import email.policy

    message = email.message_from_bytes(raw, policy=email.policy.default)
    texts = [str(message["Subject"] or "")]
    for part in message.walk():
        if part.get_content_maintype() == "text":
            texts.append(part.get_content())
    check("email", texts, where)
