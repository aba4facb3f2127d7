"""The JSON parser for every API body: bounded nesting and no NUL characters.

Python's JSON decoder recurses, so a body nested a few thousand levels deep raises RecursionError
(a 500) inside DRF's parser; PostgreSQL refuses NUL characters in text and jsonb (another 500,
after validation passed). Both are refused here as ``400 validation_error`` before any view runs.
"""

from __future__ import annotations

import json

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

MAX_DEPTH_DEFAULT = 32


def check_structure(value, *, max_depth: int) -> None:
    """Walk ``value`` without recursion; raise ``ParseError`` past ``max_depth`` or on a NUL."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise ParseError(f"JSON is nested more than {max_depth} levels deep.")
            for key, item in node.items():
                if "\x00" in key:
                    raise ParseError("JSON strings must not contain NUL (\\u0000) characters.")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise ParseError(f"JSON is nested more than {max_depth} levels deep.")
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str) and "\x00" in node:
            raise ParseError("JSON strings must not contain NUL (\\u0000) characters.")


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
        check_structure(data, max_depth=getattr(settings, "API_JSON_MAX_DEPTH", MAX_DEPTH_DEFAULT))
        return data


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")
