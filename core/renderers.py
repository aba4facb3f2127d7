"""The response envelope of CONTRACT section 2, applied in one place."""

from __future__ import annotations

from django.utils import timezone
from rest_framework.renderers import JSONRenderer

from .context import current_request_id, new_request_id

ENVELOPE_FLAG = "easypay_envelope"


def envelope_mark(response):
    """Mark ``response`` as carrying the contract's envelope already (errors, pages, replays): the
    renderer sends its body as it is instead of wrapping it in ``{"data": ...}``. One named flag on the
    response, set here only."""
    setattr(response, ENVELOPE_FLAG, True)
    return response


def utc_timestamp() -> str:
    return timezone.now().isoformat().replace("+00:00", "Z")


def _request_id(request) -> str:
    rid = getattr(request, "request_id", None) if request is not None else None
    return rid or current_request_id() or new_request_id()


class EnvelopeJSONRenderer(JSONRenderer):
    """Wraps success bodies as ``{"data": ...}``; error and paginated bodies arrive pre-shaped."""

    def render(self, data, accepted_media_type=None, renderer_context=None):
        renderer_context = renderer_context or {}
        response = renderer_context.get("response")
        request = renderer_context.get("request")
        if response is not None and response.status_code == 204:
            return b""
        pre_shaped = response is not None and (
            getattr(response, ENVELOPE_FLAG, False)
            or (response.status_code >= 400 and isinstance(data, dict) and "error" in data)
        )
        if pre_shaped:
            body = dict(data)
        else:
            body = {"data": data}
        body["request_id"] = _request_id(request)
        body["timestamp"] = utc_timestamp()
        return super().render(body, accepted_media_type, renderer_context)
