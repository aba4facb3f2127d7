"""Hypothesis strategies of hostile input: the strings and JSON values an attacker (or a broken
client, receiver or processor) sends. Shared by the API-surface and background layers.

Nothing here is specific to an endpoint: each value is something no field should answer with a
5xx, whatever the field means."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

# Single characters, by family.
NUL = ["\x00"]
LONE_SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
C0_CONTROLS = [chr(c) for c in range(0x01, 0x20)] + ["\x7f"]
C1_CONTROLS = [chr(c) for c in range(0x80, 0xA0)]
NONCHARACTERS = ["\ufffe", "\uffff", "\ufdd0", "\U0001fffe", "\U0010ffff"]
BIDI_AND_INVISIBLE = ["\u202e", "\u202d", "\u2066", "\u2067", "\u2069", "\u200f", "\u200b", "\ufeff", "\u00ad"]
NON_ASCII_DIGITS = ["\u0665", "\u096b", "\uff15", "\u06f5", "\u0e55", "\U0001d7d3", "\u00b2", "\u2155"]
LOOKALIKES = ["\uff35\uff33\uff24", "\u0430", "\u212a", "\u0131", "\ufb01"]  # full-width USD, Cyrillic a, Kelvin
HOSTILE_CHARS = (
    NUL + LONE_SURROGATES + C0_CONTROLS + C1_CONTROLS + NONCHARACTERS + BIDI_AND_INVISIBLE + NON_ASCII_DIGITS
)

# Whole strings worth trying in any field.
CURATED = [
    "",
    " ",
    "5\n",
    "\n5",
    "25.00 ",
    "\u0665.00",
    "\uff15\uff10",
    "USD ",
    "usd",
    "1e309",
    "NaN",
    "-0",
    "99999999999999999999999999",
    "' OR 1=1--",
    "%00",
    "../../etc/passwd",
    "{{7*7}}",
    "<x>&amp;</x>",
    "]]><x/>",
    "\u202egnp.exe",
    "a\u0000b",
    "a\ud800b",
    "\ufffe\uffff",
    "\x1b[31mred",
    "null",
    "true",
]


@dataclass(frozen=True)
class Deep:
    """A JSON array nested ``depth`` levels deep (written into the body as text: building it as a
    Python value and dumping it would recurse in the test itself)."""

    depth: int

    def json(self) -> str:
        return "[" * self.depth + "]" * self.depth


def _mixed(chars: list[str]) -> st.SearchStrategy[str]:
    return st.text(alphabet=st.sampled_from([*chars, "a", "Z", "0", " ", "-", "."]), min_size=1, max_size=24)


hostile_char = st.sampled_from(HOSTILE_CHARS)

# A plausible value with one hostile character somewhere in it.
seeded = st.builds(
    lambda head, char, tail: head + char + tail,
    st.sampled_from(["", "abc", "25.00", "USD", "tok_visa", "cust_1", "https://hooks.example.com/x"]),
    hostile_char,
    st.sampled_from(["", "def", "0", " "]),
)

huge = st.builds(lambda char, size: char * size, st.sampled_from(["A", "\u202e", "\x85", "9"]), st.just(100_000))

hostile_text: st.SearchStrategy[str] = st.one_of(
    st.sampled_from(CURATED),
    seeded,
    _mixed(HOSTILE_CHARS),
    st.sampled_from(NON_ASCII_DIGITS + LOOKALIKES),
    huge,
)

# Any JSON value a field might be sent: hostile strings, odd scalars, deep and wide containers.
hostile_json = st.one_of(
    hostile_text,
    hostile_text,  # weighted: strings reach the most code
    st.sampled_from([None, True, False, 0, -1, 1e308, 10**40, 0.1]),
    st.builds(Deep, st.sampled_from([40, 200, 1200])),
    st.lists(hostile_text, min_size=1, max_size=3),
    st.dictionaries(hostile_text, hostile_text, min_size=1, max_size=2),
    st.just(["x"] * 20_000),
)
