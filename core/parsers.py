"""The JSON parser for every API body: bounded nesting, and no text that cannot be stored.

Python's JSON decoder recurses, so a body nested a few thousand levels deep raises RecursionError
(a 500) inside DRF's parser; PostgreSQL refuses NUL characters in text and jsonb, and lone
surrogates (``"\\ud800"``) cannot be encoded at all (more 500s, after validation passed); and a
character XML cannot carry reaches Authorize.Net as a processor error after the payment was stored.
All are refused here as ``400 validation_error`` before any view runs (the rule is
:mod:`core.text`'s, for accepted text), naming the field that holds the character.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from .exceptions import ValidationFailed
from .text import forbidden_char, forbidden_message


def _field_name(path: tuple) -> str:
    return ".".join(str(part) for part in path) or "body"


def _refuse(path: tuple, char: str) -> None:
    raise ValidationFailed(
        "The request body holds a character that is not accepted.",
        details={_field_name(path): [forbidden_message(char)]},
    )


def check_structure(value, *, max_depth: int) -> None:
    """Walk ``value`` without recursion; raise past ``max_depth`` or on a character text may not hold.

    Too deep is a ``ParseError``; a forbidden character (in a key or a string) is a
    ``ValidationFailed`` naming the field (``metadata.note``, ``items.0``).
    """
    stack: list[tuple[object, int, tuple]] = [(value, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise ParseError(f"JSON is nested more than {max_depth} levels deep.")
            for key, item in node.items():
                char = forbidden_char(key)
                if char is not None:
                    _refuse(path, char)
                stack.append((item, depth + 1, (*path, key)))
        elif isinstance(node, list):
            if depth > max_depth:
                raise ParseError(f"JSON is nested more than {max_depth} levels deep.")
            stack.extend((item, depth + 1, (*path, index)) for index, item in enumerate(node))
        elif isinstance(node, str):
            char = forbidden_char(node)
            if char is not None:
                _refuse(path, char)


class StrictJSONParser(JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        parser_context = parser_context or {}
        encoding = parser_context.get("encoding", settings.DEFAULT_CHARSET)
        try:
            text = stream.read().decode(encoding) if stream is not None else ""
            data = json.loads(text, parse_constant=_refuse_constant)
        except RecursionError:
            raise ParseError("JSON is nested too deeply.") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ParseError(f"JSON parse error - {exc}") from None
        check_structure(data, max_depth=settings.API_JSON_MAX_DEPTH)
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
