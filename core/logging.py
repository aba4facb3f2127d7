"""Structured JSON logs carrying the request id, with card data and secrets masked."""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime

from pythonjsonlogger.json import JsonFormatter

from .context import current_request_id

# 13-19 digit runs (optionally spaced/dashed) look like card numbers; cardCode elements hold CVVs.
# A UUID is matched first (group "uuid") so that its digit groups are never read as a card number, and
# a digit run glued to a letter is part of an identifier (hex digest, UUID, processor id), not a PAN.
PAN_CANDIDATE = re.compile(
    r"(?P<uuid>\b[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\b)"
    r"|(?<![0-9A-Za-z.])(?:\d[ -]?){12,18}\d(?![0-9A-Za-z])"
)
_CARD_CODE = re.compile(r"(<(?:cardCode|cvv|card_code)>)[^<]*(</)", re.IGNORECASE)
_SECRETS = re.compile(
    r"(?i)(\"?(?:key_secret|password|secret|transactionKey|access_token|refresh_token|x-api-key|authorization)\"?"
    r"\s*[:=]\s*\"?)([^\"\s,}<]+)"
)


def redact_text(text: str) -> str:
    text = _CARD_CODE.sub(r"\1***\2", text)
    text = PAN_CANDIDATE.sub(lambda m: m.group(0) if m.group("uuid") else "[REDACTED_PAN]", text)
    return _SECRETS.sub(r"\1[REDACTED]", text)


class RequestIDFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            request = getattr(record, "request", None)
            record.request_id = getattr(request, "request_id", None) or current_request_id()
        return True


class RedactingFilter(logging.Filter):
    """Masks card numbers, CVVs and secrets in the rendered message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact_text(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


# The attributes every LogRecord has: anything else on a record is an ``extra`` field.
_RECORD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime", "request_id"}


class JSONFormatter(JsonFormatter):
    """One JSON object per line (python-json-logger): ``ts`` (UTC, ``Z``), ``level``, ``logger``,
    ``message``, ``request_id``, the record's extra fields, then ``exc`` (the traceback, redacted).
    Values JSON cannot hold are written as ``str()``."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("fmt", "%(levelname)s %(name)s %(message)s %(request_id)s")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger", "exc_info": "exc"})
        kwargs.setdefault("reserved_attrs", sorted(_RECORD_ATTRS))
        kwargs.setdefault("timestamp", "ts")
        kwargs.setdefault("json_default", str)
        super().__init__(*args, **kwargs)

    def process_log_record(self, log_data: dict) -> dict:
        created = log_data.pop("ts")
        out = {"ts": created.isoformat().replace("+00:00", "Z")}
        out.update((key, value) for key, value in log_data.items() if key != "exc" and not key.startswith("_"))
        if log_data.get("exc"):
            out["exc"] = redact_text(log_data["exc"])
        return out


class ConsoleFormatter(logging.Formatter):
    """One readable line per record for a developer's terminal (``make run``): time, level, logger,
    message, request id and any extra fields as ``key=value``. Production keeps ``JSONFormatter``."""

    _SKIP = _RECORD_ATTRS

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).strftime("%H:%M:%S")
        parts = [f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        request_id = getattr(record, "request_id", None)
        if request_id:
            parts.append(f"request_id={request_id}")
        for key, value in record.__dict__.items():
            if key not in self._SKIP and not key.startswith("_") and key not in ("request", "server_time", "data"):
                parts.append(f"{key}={value}")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + redact_text(self.formatException(record.exc_info))
        return line
