"""The one rule for text that comes from outside EasyPay and gets stored.

Text from outside reaches us two ways, and each has its own treatment:

* **Accepted** text is what a client asks us to keep and use: strings in an API request body (a
  payment's ``description``, customer fields, ``metadata``, ...) and the ``Idempotency-Key`` header.
  It is *refused at the edge* (``400 validation_error``, before anything is stored or sent on) when it
  holds a character that cannot be stored or forwarded: NUL (PostgreSQL text and jsonb cannot hold
  it), a lone UTF-16 surrogate (not encodable as UTF-8, so no database, log or HTTP body can carry
  it), or any other character XML 1.0 forbids (the other C0 controls, U+FFFE, U+FFFF): Authorize.Net's
  API is XML, and a character it cannot carry turns into a processor error after the payment was
  stored. :func:`forbidden_char` finds such a character; :mod:`core.parsers` applies it to every
  JSON body.

* **Recorded** text is what we only keep as a record of what someone else sent or answered: audit
  rows (paths, headers, ignored bodies), inbound notifications' raw bodies and headers, webhook
  receivers' replies, Authorize.Net's replies. It is *never refused* (refusing a record loses it, or
  leaves a delivery re-sent forever): :func:`recordable` makes it storable by escaping NUL and lone
  surrogates as visible ``\\u0000`` / ``\\ud800`` text and cutting it to the column's size, and
  :func:`recordable_bytes` / :func:`recordable_json` do the same for raw bytes and decoded JSON.
"""

from __future__ import annotations

import re
from typing import Any

# XML 1.0 Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
_XML_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
# What no database column (or UTF-8 encoder) can hold at all.
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

TOO_DEEP = "[nested too deeply]"
RECORD_MAX_DEPTH = 32


def forbidden_char(text: str) -> str | None:
    """The first character of ``text`` that accepted text may not hold, or None."""
    match = _XML_FORBIDDEN.search(text)
    return match.group(0) if match else None


def codepoint(char: str) -> str:
    return f"U+{ord(char):04X}"


def forbidden_message(char: str) -> str:
    return (
        f"Must not contain the character {codepoint(char)}: control characters, lone surrogates and "
        "noncharacters cannot be stored or sent to the processor."
    )


def _escape(match: re.Match) -> str:
    return f"\\u{ord(match.group(0)):04x}"


def recordable(text: Any, max_chars: int | None = None) -> str:
    """``text`` as a string any column can store: NUL and lone surrogates escaped, at most ``max_chars``."""
    if text is None:
        return ""
    if not isinstance(text, str):
        text = str(text)
    if _UNSTORABLE.search(text):
        text = _UNSTORABLE.sub(_escape, text)
    if max_chars is not None and len(text) > max_chars:
        text = text[:max_chars]
    return text


def recordable_bytes(raw: bytes | None, max_chars: int | None = None) -> str:
    """Raw bytes from outside as recordable text (invalid UTF-8 becomes U+FFFD)."""
    if not raw:
        return ""
    if max_chars is not None:
        raw = raw[: max_chars * 4]  # never decode more than could be kept
    return recordable(raw.decode("utf-8", errors="replace"), max_chars)


def recordable_json(value: Any, *, max_depth: int = RECORD_MAX_DEPTH) -> Any:
    """A copy of decoded JSON that jsonb can store: keys and strings :func:`recordable`, containers
    deeper than ``max_depth`` replaced by a marker. Iterative: any depth is safe to pass in."""
    if isinstance(value, str):
        return recordable(value)
    if not isinstance(value, dict | list | tuple):
        return value
    root: list[Any] = [None]
    stack: list[tuple[Any, Any, Any, int]] = [(value, root, 0, 1)]
    while stack:
        node, parent, slot, depth = stack.pop()
        if isinstance(node, str):
            parent[slot] = recordable(node)
        elif isinstance(node, dict | list | tuple):
            if depth > max_depth:
                parent[slot] = TOO_DEEP
            elif isinstance(node, dict):
                copy: dict[str, Any] = {}
                parent[slot] = copy
                for key, item in node.items():
                    name = recordable(key)
                    copy[name] = None
                    stack.append((item, copy, name, depth + 1))
            else:
                items: list[Any] = [None] * len(node)
                parent[slot] = items
                stack.extend((item, items, index, depth + 1) for index, item in enumerate(node))
        else:
            parent[slot] = node
    return root[0]


def json_depth_exceeds(value: Any, max_depth: int) -> bool:
    """Whether decoded JSON nests containers more than ``max_depth`` deep (without recursing)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list):
            if depth > max_depth:
                return True
            items = node.values() if isinstance(node, dict) else node
            stack.extend((item, depth + 1) for item in items)
    return False
