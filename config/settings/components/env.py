"""Environment variables, read with django-environ (CONTRACT section 1).

A `.env` file in the project root may supply them; real environment variables win. Every settings
module reads through ``env`` below.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent.parent.parent

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_KIND = {bool: "a boolean (true/false)", int: "an integer", float: "a number"}


class StrictEnv(environ.Env):
    """django-environ, stricter where its casts are lenient, so that a typo stops the process at
    start-up naming the variable (docs/operations/settings.md). Kept by hand because django-environ
    reads any unknown word as a false boolean ("maybe" -> False), strips everything but digits from a
    float ("5s" -> 5.0), keeps blanks around list items and fails on an empty number instead of using
    the default."""

    def get_value(self, var, cast=None, default=environ.Env.NOTSET, parse_default=False):
        raw = self.ENVIRON.get(var)
        if cast in (int, float) and raw is not None and raw.strip() == "" and default is not self.NOTSET:
            return default
        try:
            return super().get_value(var, cast=cast, default=default, parse_default=parse_default)
        except ValueError as exc:
            kind = "a list of integers" if cast == [int] else _KIND.get(cast, "valid")
            raise ValueError(f"{var} must be {kind}, got {raw!r}") from exc

    @classmethod
    def parse_value(cls, value, cast):
        if cast is bool:
            lowered = value.strip().lower()
            if lowered in _TRUE or lowered in _FALSE:
                return lowered in _TRUE
            raise ValueError(value)
        if cast is float:
            return float(value)
        if cast is list or isinstance(cast, list):
            item_cast = cast[0] if isinstance(cast, list) else str
            return [item_cast(item.strip()) for item in value.split(",") if item.strip()]
        return super().parse_value(value, cast)

    def int_map(self, var: str, default: dict[str, int]) -> dict[str, int]:
        """``"USD:10000,JPY:10000"`` -> ``{"USD": 10000, "JPY": 10000}``. By hand: django-environ's
        dict syntax is ``USD=10000,JPY=10000``, and the documented one uses colons."""
        value = self.str(var, default=None)
        if value is None:
            return dict(default)
        out: dict[str, int] = {}
        for item in value.split(","):
            if not item.strip():
                continue
            key, sep, number = item.partition(":")
            try:
                if not sep or not key.strip():
                    raise ValueError
                out[key.strip()] = int(number)
            except ValueError as exc:
                raise ValueError(f"{var} must be a list of NAME:integer, got {item.strip()!r}") from exc
        return out


env = StrictEnv()
StrictEnv.read_env(BASE_DIR / ".env")
