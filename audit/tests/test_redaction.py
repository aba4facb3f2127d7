"""Redaction of audit payloads: secrets, card data, credentials and personal data, at any depth."""

from __future__ import annotations

import json

from audit.redaction import REDACTED, REDACTED_PAN, luhn_valid, pii_fingerprint, redact, redact_string


def test_redacts_secret_keys_at_every_depth():
    payload = {
        "amount": "25.99",
        "card": {"number": "4111111111111111", "cvv": "123", "exp_month": 12},
        "auth": [{"password": "hunter2", "refresh_token": "r1"}, {"access_token": "a1", "token_type": "Bearer"}],
        "headers": {"Authorization": "Bearer abc.def.ghi", "X-API-Key": "ek_test_0123456789abcdef.s3cr3tvalue"},
        "nested": {"deeper": {"key_secret": "shh", "webhook_secret": "whsec_abcdefghijkl", "card_code": "999"}},
        "card_token": "tok_visa",
    }
    out = redact(payload)
    assert out["amount"] == "25.99"
    assert out["card"] == {"number": REDACTED, "cvv": REDACTED, "exp_month": REDACTED}
    assert out["auth"][0] == {"password": REDACTED, "refresh_token": REDACTED}
    assert out["auth"][1] == {"access_token": REDACTED, "token_type": "Bearer"}
    assert out["headers"] == {"Authorization": REDACTED, "X-API-Key": REDACTED}
    assert out["nested"]["deeper"] == {"key_secret": REDACTED, "webhook_secret": REDACTED, "card_code": REDACTED}
    assert out["card_token"] == REDACTED
    text = json.dumps(out)
    leaked = ("4111111111111111", '"123"', "hunter2", "r1", "a1", "abc.def", "s3cr3t", "shh", "whsec_", "tok_visa")
    for secret in leaked:
        assert secret not in text
    # The input is left untouched.
    assert payload["card"]["number"] == "4111111111111111"


def test_masks_card_numbers_inside_free_text_and_lists():
    out = redact({"description": "card 4242 4242 4242 4242 used", "notes": ["pan 5424-0000-0000-0015", "ref 1234"]})
    assert out["description"] == f"card {REDACTED_PAN} used"
    assert out["notes"] == [f"pan {REDACTED_PAN}", "ref 1234"]


def test_uuids_and_hex_identifiers_are_never_read_as_card_numbers():
    # CI once saw "f4da6d36-7bf6-4337-9068-03159d360eed" stored as "f4da6d36-7bf[REDACTED_PAN]d360eed":
    # "6-4337-9068-03159" is a Luhn-valid 14-digit run with dashes.
    assert luhn_valid("64337906803159")
    refund_id = "f4da6d36-7bf6-4337-9068-03159d360eed"
    all_digits = "41111111-1111-1111-1111-111111111111"
    digest = "ab4111111111111111cd"
    assert redact({"refund_id": refund_id, "ids": [all_digits, f"see {refund_id}."], "d": digest}) == {
        "refund_id": refund_id,
        "ids": [all_digits, f"see {refund_id}."],
        "d": digest,
    }
    # A card number next to a UUID is still masked.
    assert redact_string(f"{refund_id} 4111 1111 1111 1111") == f"{refund_id} {REDACTED_PAN}"


def test_non_luhn_digit_runs_and_ids_survive():
    # Order numbers and timestamps are not card numbers: only Luhn-valid 13-19 digit runs are masked.
    assert redact({"order": "1234567890123"}) == {"order": "1234567890123"}
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert redact({"as_number": 4111111111111111}) == {"as_number": REDACTED_PAN}
    assert redact({"n": [4242424242424242, 7]}) == {"n": [REDACTED_PAN, 7]}
    assert redact({"key_id": "ek_test_0123456789abcdef", "api_key_id": "3f1c"}) == {
        "key_id": "ek_test_0123456789abcdef",
        "api_key_id": "3f1c",
    }


def test_key_is_redacted_only_when_it_looks_like_a_credential():
    out = redact({"key": "ek_test_0123456789abcdef.Zm9vYmFyYmF6cXV4MTIz", "data": [{"key": "order-42"}]})
    assert out == {"key": REDACTED, "data": [{"key": "order-42"}]}


def test_credentials_in_free_text_are_masked():
    text = (
        "sent ek_live_0123456789abcdef.SuperSecretValue99 with whsec_Zm9vYmFyYmF6 and "
        "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlX3Zh"
    )
    cleaned = redact_string(text)
    assert "SuperSecretValue99" not in cleaned
    assert "ek_live_0123456789abcdef." in cleaned
    assert "whsec_Zm9v" not in cleaned
    assert "eyJhbGciOiJIUzI1NiJ9" not in cleaned


def test_personal_data_becomes_a_stable_fingerprint():
    out = redact({"customer_email": "Jane@Example.com", "customer_name": "Jane Doe", "customer_id": "cus_1"})
    assert out["customer_id"] == "cus_1"
    assert out["customer_email"] == pii_fingerprint("jane@example.com")
    assert out["customer_email"].startswith("[PII:")
    assert "Jane" not in json.dumps(out)
    kept = redact({"customer_email": "jane@example.com", "card": {"cvv": "1"}}, keep_pii=True)
    assert kept == {"customer_email": "jane@example.com", "card": {"cvv": REDACTED}}


def test_deep_nesting_is_bounded():
    deep: dict = {"password": "x"}
    for _ in range(50):
        deep = {"inner": deep}
    text = json.dumps(redact(deep))
    assert '"x"' not in text


def test_nul_characters_are_escaped_so_postgresql_can_store_the_row():
    from audit.redaction import redact

    assert redact({"note\x00": "a\x00b", "list": ["\x00"]}) == {"note\\u0000": "a\\u0000b", "list": ["\\u0000"]}


def test_keys_are_judged_the_same_cached_or_not_and_huge_keys_are_not_kept():
    from audit import redaction

    redaction._cached_key_info.cache_clear()
    value = {" Client-Secret": "hunter2", "pass\x00word": "x", "order": "4242424242424242", "n": 7}
    first, again = redact(value), redact(value)  # the second from the cache
    assert first == again
    assert first[" Client-Secret"] == REDACTED and first["order"] == REDACTED_PAN
    assert "pass\\u0000word" in first and "pass\x00word" not in first  # NUL escaped, as stored
    assert redaction._cached_key_info.cache_info().hits >= 4
    huge = "password" + "x" * 100_000
    before = redaction._cached_key_info.cache_info().currsize
    assert redact({huge: "hunter2"}) == {huge: REDACTED}
    assert redaction._cached_key_info.cache_info().currsize == before  # a 100 kB key is not cached
    assert redaction._cached_key_info.cache_info().maxsize == 2048
