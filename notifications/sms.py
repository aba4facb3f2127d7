"""SMS backends: one interface, Twilio (the official ``twilio`` package), the console, and memory (tests).

``SMS_BACKEND`` picks one. A backend's ``send`` returns the provider's message id or raises
:class:`SMSError` saying whether a later try could succeed (``temporary``).
"""

from __future__ import annotations

import logging
import sys
import threading
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from django.conf import settings

logger = logging.getLogger("easypay.notifications")


class SMSError(Exception):
    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class SMSBackend(Protocol):
    def send(self, *, to: str, body: str) -> str: ...


@dataclass
class SentSMS:
    to: str
    body: str
    sid: str


outbox: list[SentSMS] = []
_outbox_lock = threading.Lock()


class LocmemBackend:
    """Keeps every text in ``notifications.sms.outbox`` (the tests read it)."""

    def send(self, *, to: str, body: str) -> str:
        with _outbox_lock:
            sid = f"SMlocmem{len(outbox) + 1:06d}"
            outbox.append(SentSMS(to=to, body=body, sid=sid))
        return sid


class ConsoleBackend:
    """Prints each text to standard output (development)."""

    def send(self, *, to: str, body: str) -> str:
        sys.stdout.write(f"--- SMS to {to} ---\n{body}\n---\n")
        sys.stdout.flush()
        return "console"


class TwilioBackend:
    """Twilio's Messages API through its official client.

    ``TWILIO_API_BASE_URL`` (tests, or a regional proxy) replaces the scheme and host of every request
    the client makes; the path and the form body stay Twilio's own.
    """

    def __init__(self) -> None:
        from twilio.http.http_client import TwilioHttpClient

        base = settings.TWILIO_API_BASE_URL

        class _HttpClient(TwilioHttpClient):
            def request(self, method, url, *args, **kwargs):
                if base:
                    target, origin = urlsplit(url), urlsplit(base)
                    url = urlunsplit((origin.scheme, origin.netloc, target.path, target.query, target.fragment))
                return super().request(method, url, *args, **kwargs)

        self.http_client = _HttpClient(timeout=settings.TWILIO_TIMEOUT_SECONDS)

    def send(self, *, to: str, body: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException
        from twilio.rest import Client

        if not (settings.TWILIO_ACCOUNT_SID and settings.TWILIO_AUTH_TOKEN and settings.TWILIO_FROM_NUMBER):
            raise SMSError("Twilio is not configured (TWILIO_ACCOUNT_SID, _AUTH_TOKEN, _FROM_NUMBER).", temporary=False)
        client = Client(settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN, http_client=self.http_client)
        try:
            message = client.messages.create(to=to, from_=settings.TWILIO_FROM_NUMBER, body=body)
        except TwilioRestException as exc:
            temporary = exc.status == 429 or exc.status >= 500
            raise SMSError(f"Twilio {exc.status} (code {exc.code}): {exc.msg}", temporary=temporary) from None
        except TwilioException as exc:
            raise SMSError(f"Twilio: {exc}", temporary=True) from None
        except OSError as exc:  # connection refused, timeout (requests' errors are OSErrors)
            raise SMSError(f"Twilio unreachable: {exc}", temporary=True) from None
        return str(message.sid or "")


BACKENDS = {"locmem": LocmemBackend, "console": ConsoleBackend, "twilio": TwilioBackend}


def get_backend() -> SMSBackend:
    name = (settings.SMS_BACKEND or "console").lower()
    if name not in BACKENDS:
        raise SMSError(f"Unknown SMS_BACKEND {name!r}; use one of {', '.join(BACKENDS)}.", temporary=False)
    return BACKENDS[name]()
