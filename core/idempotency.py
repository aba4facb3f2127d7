"""``Idempotency-Key`` for every POST under /api/v1/ that creates an object or moves money: payments
and their capture, refund and cancel, subscriptions, webhook endpoints and API keys (one decorator,
:func:`idempotent`, on each of those actions).

A key belongs to one merchant (a database unique constraint, not an ``exists()`` check). The first
request inserts an ``in_progress`` record and commits it before anything else happens, so a
concurrent duplicate cannot also reach the processor: it finds the record and gets
``409 idempotency_conflict`` (in progress). The finished response (status and the JSON of its
``data``/``error`` part, key order kept) is stored and replayed byte-identically, apart from the
envelope's ``request_id``/``timestamp``, with ``Idempotent-Replayed: true``. The same key with a
different body is ``409 idempotency_conflict``. Responses that changed nothing (validation
failures, 401/403/404/409/429, an open circuit) are not stored, so a corrected retry with the same
key works. Records live ``IDEMPOTENCY_KEY_TTL_HOURS`` (24 h) and are purged by
the ``idempotency_purge`` beat task (payments.tasks).

Secrets are shown once: a response field named in ``secret_fields`` (an API key's ``key`` and
``key_secret``, a webhook endpoint's ``secret``) is stored as ``null`` and replayed as ``null``. The
replay still names the object that was created (so a client that lost the first answer finds it
and never creates a second), but it never carries the secret again: the record is plain JSON and
secrets are kept only hashed (API keys) or only on their own row (endpoint signing secrets). A
client that lost the secret revokes the key and creates another, or rotates the endpoint's secret.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter
from rest_framework.response import Response
from rest_framework.utils.encoders import JSONEncoder

from core import sqlwrite
from core.exceptions import IdempotencyConflict, ValidationFailed
from core.models import IdempotencyRecord
from core.renderers import envelope_mark
from core.sqlwrite import Statement
from core.text import forbidden_char, forbidden_message

HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255

# The header as the OpenAPI schema documents it on every action decorated with ``idempotent``.
OPENAPI_PARAMETER = OpenApiParameter(
    HEADER,
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    required=False,
    description=(
        "Up to 255 characters. The same key and body within 24 hours returns the first response again "
        "(header Idempotent-Replayed: true) and creates or moves money once; the same key with another body, "
        "or while the first request is still running, is 409 idempotency_conflict. Secrets in a creation "
        "response (API key, webhook signing secret) are shown once: a replay answers them as null."
    ),
)


@dataclass
class Claim:
    """A request's hold on its key, while ``idempotent`` serves it (state kept here, never as ad-hoc
    attributes on the record). The decorator hands it to the action as ``request.idempotency_claim``;
    an action whose service completes the key in its outcome's transaction passes it on explicitly."""

    record: IdempotencyRecord
    # When the first request (which died mid-flight) had claimed the key: this request took it over.
    claimed_since: datetime | None = None
    # Set once idempotency_complete_with_outcome stored a response in the outcome's transaction, and
    # (status, stored JSON) once that transaction committed.
    completed_early: bool = False
    completed_with: tuple[int, str] | None = None
    # The status the action answers a success with (``idempotent(success_status=)``): a completion
    # predicted by the service stores it, so the service need not know HTTP.
    success_status: int = 200


def ttl() -> timedelta:
    return timedelta(hours=int(settings.IDEMPOTENCY_KEY_TTL_HOURS))


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), cls=JSONEncoder, ensure_ascii=False)
    # surrogatepass: a fingerprint never raises, whatever the text (the parser refuses lone surrogates
    # in bodies, but a fingerprint must not depend on every caller having parsed with it).
    text = f"{method.upper()}\n{path}\n{canonical}"
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def idempotency_begin(
    *, merchant_id, key: str, fingerprint: str, method: str = "POST", path: str = ""
) -> tuple[IdempotencyRecord, bool]:
    """Claim ``key`` for this request: ``(record, False)`` to go ahead, ``(record, True)`` to replay.

    Raises ``IdempotencyConflict`` for a different body or a first request still in flight.
    """
    claim, replay = _begin(merchant_id=merchant_id, key=key, fingerprint=fingerprint, method=method, path=path)
    return claim.record, replay


def _begin(*, merchant_id, key: str, fingerprint: str, method: str, path: str) -> tuple[Claim, bool]:
    for _ in range(3):
        now = timezone.now()
        try:
            record = _claim(
                merchant_id=merchant_id,
                key=key,
                fingerprint=fingerprint,
                request_method=method[:10],
                request_path=path[:255],
                status=IdempotencyRecord.Status.IN_PROGRESS,
                expires_at=now + ttl(),
            )
            return Claim(record), False
        except IntegrityError:
            existing = IdempotencyRecord.objects.filter(merchant_id=merchant_id, key=key).first()
        if existing is None:  # finished and abandoned meanwhile: claim it again
            continue
        if existing.expires_at <= now:
            IdempotencyRecord.objects.filter(pk=existing.pk, expires_at__lte=now).delete()
            continue
        if existing.fingerprint != fingerprint:
            raise IdempotencyConflict(
                "This Idempotency-Key was already used with a different request; use a new key for a new request.",
                details={"idempotency_key": [key]},
            )
        if existing.status == IdempotencyRecord.Status.IN_PROGRESS:
            if existing.created_at <= now - stale_after() and _take_over(existing, now):
                # The first request died mid-flight (worker killed, deploy): this retry runs the
                # action again. Money cannot move twice: a create adopts the payment already stored
                # under this key, and captures/refunds/voids are guarded by the payment's state.
                claimed_since = existing.expires_at - ttl()
                existing.created_at = now
                return Claim(existing, claimed_since=claimed_since), False
            raise IdempotencyConflict(
                "A request with this Idempotency-Key is still in progress; retry after it completes.",
                details={"idempotency_key": [key]},
            )
        return Claim(existing), True
    raise IdempotencyConflict("This Idempotency-Key is being used concurrently; retry shortly.")


def _claim(**fields: Any) -> IdempotencyRecord:
    """Insert the claim, committed on return. Outside a transaction (a request) the INSERT commits by
    itself (one round trip instead of BEGIN/INSERT/COMMIT) and a duplicate key leaves nothing to roll
    back; inside one (tests, a caller's atomic block) a savepoint keeps the caller's transaction usable."""
    record = IdempotencyRecord(**fields)
    sqlwrite.insert_row(record, savepoint=True)
    return record


def stale_after() -> timedelta:
    """How long an ``in_progress`` claim may stand before a retry can take it over: longer than
    any request can run (processor connect + read timeouts, with a wide margin)."""
    default = 2 * (settings.AUTHORIZE_NET_CONNECT_TIMEOUT + settings.AUTHORIZE_NET_READ_TIMEOUT) + 30
    return timedelta(seconds=float(settings.IDEMPOTENCY_STALE_SECONDS or default))


def _take_over(record: IdempotencyRecord, now) -> bool:
    """Claim a stale record for this request; a conditional update so only one retry wins."""
    return (
        IdempotencyRecord.objects.filter(
            pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS, created_at=record.created_at
        ).update(created_at=now)
        == 1
    )


def _stored_body(body: Any) -> str:
    return json.dumps(body, cls=JSONEncoder, ensure_ascii=False)


def idempotency_complete(*, record: IdempotencyRecord, status: int, body: Any, resource_id: str = "") -> None:
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.COMPLETED,
        response_status=status,
        response_body=_stored_body(body),
        resource_id=resource_id[:64],
    )


def idempotency_complete_with_outcome(*, claim: Claim | None, body: Any, status: int | None = None) -> None:
    """``idempotency_outcome_statement``, run at once."""
    statement = idempotency_outcome_statement(claim=claim, body=body, status=status)
    if statement is not None:
        sqlwrite.execute(statement, using=sqlwrite.write_alias(IdempotencyRecord))


def idempotency_outcome_statement(*, claim: Claim | None, body: Any, status: int | None = None) -> Statement | None:
    """Complete ``claim`` (the request's, if it sent a key) inside the caller's transaction, the one
    that records the action's outcome, with the response the view will give for it: one UPDATE in that
    transaction instead of a transaction of its own after the response is built.

    Only a prediction: once the action has returned, ``idempotent`` compares the response it actually
    got (status and the exact stored JSON) with what this stored, and stores the real one when they
    differ. The record is taken as completed only once the transaction commits; a rolled-back outcome
    leaves the claim in progress, handled as before. Used once per request.

    ``status`` defaults to the one the action declared for a success (``idempotent(success_status=)``),
    so a service completing the claim need not know HTTP.

    Returns the UPDATE for the caller to run in that transaction (``core.sqlwrite``, with its other
    writes in one round trip), or None when there is nothing to complete.
    """
    if claim is None or claim.completed_early or not transaction.get_connection().in_atomic_block:
        return None
    claim.completed_early = True
    status = claim.success_status if status is None else status
    text = _stored_body(body)

    def committed() -> None:
        claim.completed_with = (status, text)

    transaction.on_commit(committed)
    return sqlwrite.update_statement(
        IdempotencyRecord,
        where={"id": claim.record.pk},
        values={
            "status": IdempotencyRecord.Status.COMPLETED,
            "response_status": status,
            "response_body": text,
            "resource_id": _resource_id(body)[:64],
        },
    )


def _reopen(record: IdempotencyRecord) -> None:
    """Undo ``idempotency_complete_with_outcome``: the claim is in progress again, with no response."""
    IdempotencyRecord.objects.filter(pk=record.pk).update(
        status=IdempotencyRecord.Status.IN_PROGRESS, response_status=None, response_body="", resource_id=""
    )


def idempotency_abandon(*, record: IdempotencyRecord) -> None:
    """Forget a claim whose response is not kept, so a corrected retry with the same key runs."""
    IdempotencyRecord.objects.filter(pk=record.pk, status=IdempotencyRecord.Status.IN_PROGRESS).delete()


def idempotency_purge(*, now=None) -> int:
    deleted, _ = IdempotencyRecord.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted


def replay_response(record: IdempotencyRecord) -> Response:
    body = json.loads(record.response_body) if record.response_body else None
    response = Response(body, status=record.response_status or 200, headers={REPLAYED_HEADER: "true"})
    if isinstance(body, dict) and "error" in body:
        envelope_mark(response)
    return response


def storable(response: Response) -> bool:
    """Kept: successes, declines, and processor failures that left a stored payment behind."""
    status = response.status_code
    if 200 <= status < 300 or status == 402:
        return True
    data = response.data
    return status >= 500 and status != 503 and isinstance(data, dict) and data.get("data") is not None


def _resource_id(data: Any) -> str:
    if isinstance(data, dict):
        inner = data.get("data") if "error" in data else data
        if isinstance(inner, dict) and inner.get("id"):
            return str(inner["id"])
    return ""


def _header_key(request) -> str | None:
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not key.strip() or len(key) > MAX_KEY_LENGTH:
        raise ValidationFailed(
            f"The {HEADER} header must be 1 to {MAX_KEY_LENGTH} characters.",
            details={HEADER: [f"Must be 1 to {MAX_KEY_LENGTH} characters."]},
        )
    char = forbidden_char(key)
    if char is not None:  # the key is stored: accepted text (core.text)
        raise ValidationFailed(
            f"The {HEADER} header holds a character that is not accepted.", details={HEADER: [forbidden_message(char)]}
        )
    return key


def _without_secrets(data: Any, secret_fields: tuple[str, ...]) -> Any:
    if not secret_fields or not isinstance(data, dict):
        return data
    inner = data.get("data") if "error" in data else data
    if not isinstance(inner, dict):
        return data
    cleaned = {k: (None if k in secret_fields else v) for k, v in inner.items()}
    return {**data, "data": cleaned} if "error" in data else cleaned


def idempotent(view_method=None, *, secret_fields: tuple[str, ...] = (), success_status: int = 200):
    """Decorate a ViewSet action (after authentication and permissions have run) with key handling.

    ``@idempotent`` or ``@idempotent(secret_fields=("secret",))``: the named response fields are
    never stored, and answer ``null`` on a replay (see the module docstring). ``success_status``: the
    status the action answers a success with (a completion predicted by the service stores it).
    """
    if view_method is None:
        return functools.partial(idempotent, secret_fields=tuple(secret_fields), success_status=success_status)

    @functools.wraps(view_method)
    def wrapper(self, request, *args, **kwargs):
        key = _header_key(request)
        if key is None:
            return view_method(self, request, *args, **kwargs)
        fingerprint = request_fingerprint(method=request.method, path=request.path, body=request.data)
        claim, replay = _begin(
            merchant_id=request.user.merchant_id,
            key=key,
            fingerprint=fingerprint,
            method=request.method,
            path=request.path,
        )
        record = claim.record
        if replay:
            return replay_response(record)
        # The action's view of the claim: ``claimed_since`` is set when this request took over a claim
        # whose first request died (the action must look for what that request already did, see
        # payments.services.payment_create), and a service may complete it in its outcome's transaction.
        claim.success_status = success_status
        request.idempotency_claim = claim
        try:
            try:
                response = view_method(self, request, *args, **kwargs)
            except Exception as exc:
                response = self.handle_exception(exc)
        except BaseException:
            idempotency_abandon(record=record)
            raise
        if storable(response):
            kept = _without_secrets(response.data, secret_fields)
            if claim.completed_with != (response.status_code, _stored_body(kept)):
                idempotency_complete(
                    record=record, status=response.status_code, body=kept, resource_id=_resource_id(kept)
                )
        else:
            if claim.completed_early:
                _reopen(record)  # the outcome stored a 201 this request does not answer: claimed again
            if response.status_code == 500:
                # An unexpected error may come after money moved: keep the claim, so a retry is 409 until it
                # goes stale and is then answered from what this request already did (never re-run blind).
                pass
            else:
                idempotency_abandon(record=record)
        return response

    return wrapper
