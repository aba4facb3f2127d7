"""Writes of the audit app: recording audit rows (API requests, staff actions) and the GDPR services."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.functional import LazyObject

from core.context import current_request_id
from core.text import recordable, recordable_json

from . import writer
from .models import AuditLog
from .redaction import redact

# Request headers worth keeping (the credential headers are kept only to show they were sent, redacted).
_KEPT_HEADERS = ("Content-Type", "Idempotency-Key", "X-Request-ID", "X-API-Key", "Authorization", "User-Agent")


def _jsonable(value: Any) -> Any:
    """Decimals, UUIDs, dates -> JSON types (what a JSONField can hold)."""
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def audit_payload(value: Any, *, max_bytes: int | None = None) -> Any:
    """Redact ``value`` and cap its size: an over-large payload keeps a redacted excerpt."""
    if value is None:
        return None
    # Recorded text (core.text): NUL and lone surrogates escaped, any depth cut, before anything
    # recurses over it; what jsonb could not store would lose the whole row.
    cleaned = redact(_jsonable(recordable_json(value)))
    limit = max_bytes or settings.AUDIT_MAX_PAYLOAD_BYTES
    text = json.dumps(cleaned, separators=(",", ":"))
    if len(text) <= limit:
        return cleaned
    return {"_truncated": True, "_size": len(text), "excerpt": text[:limit]}


def _client_ip(request) -> str | None:
    if request is None:
        return None
    from accounts.ipfilter import client_ip

    address = client_ip(request)
    return str(address) if address is not None else None


def _user_agent(request) -> str:
    if request is None:
        return ""
    return recordable(request.META.get("HTTP_USER_AGENT") or "", 512)


def audit_log_record(
    *,
    action: str,
    service_name: str,
    resource_type: str = "",
    resource_id: Any = "",
    merchant_id: Any = None,
    actor_type: str = AuditLog.ActorType.SYSTEM,
    actor_id: Any = "",
    request=None,
    request_data: Any = None,
    response_data: Any = None,
    status_code: int | None = None,
    duration_ms: int | None = None,
    correlation_id: str | None = None,
) -> AuditLog:
    """Build one redacted audit row and hand it to the writer (buffered or synchronous)."""
    row = AuditLog(
        correlation_id=recordable(
            correlation_id or getattr(request, "request_id", None) or current_request_id() or "", 128
        ),
        service_name=recordable(service_name, 50),
        action=recordable(action, 100),
        resource_type=recordable(resource_type or "", 50),
        resource_id=recordable(resource_id or "", 255),
        merchant_id=merchant_id,
        actor_type=actor_type,
        actor_id=recordable(actor_id or "", 128),
        ip_address=_client_ip(request),
        user_agent=_user_agent(request),
        request_data=audit_payload(request_data),
        response_data=audit_payload(response_data),
        status_code=status_code,
        duration_ms=duration_ms,
        created_at=timezone.now(),
    )
    writer.record(row)
    return row


# --- API requests ---------------------------------------------------------------------------------


def _plural(name: str) -> str:
    return name if name.endswith("s") else name + "s"


def _principal_fields(request) -> tuple[str, str, Any]:
    """(actor_type, actor_id, merchant_id) of whoever made the request, without touching the session."""
    from accounts.principal import MerchantPrincipal

    user = request.__dict__.get("user")
    # DRF's Request.user setter also sets the Django request's ``user``; a LazyObject left there means
    # DRF never authenticated (never evaluate it: that would read the session).
    if not isinstance(user, LazyObject) and isinstance(user, MerchantPrincipal):
        actor_id = user.key_id if user.credential_type == "api_key" else (user.user_id or user.key_id)
        actor_type = "jwt" if user.credential_type == "jwt" else "api_key"
        return actor_type, str(actor_id or ""), user.merchant_id
    # Unauthenticated (or refused) API call: keep the key id it claimed, never its secret.
    attempted = request.headers.get("X-API-Key", "")
    key_id = attempted.partition(".")[0][:64] if "." in attempted else ""
    return AuditLog.ActorType.ANONYMOUS, key_id, None


def _summarize_list(data: Any) -> Any:
    """A page of a list is recorded as which rows were returned, not the rows themselves (cheaper to
    redact and store, and the rows have their own history)."""
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        items = data["data"]
        return {
            "count": len(items),
            "ids": [item.get("id") for item in items[:100] if isinstance(item, dict)],
            "pagination": data.get("pagination"),
        }
    return data


_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_READ_KEPT_FIELDS = ("id", "status")


def _summarize_read(data: Any) -> Any:
    """What a read returned, by identity only: a page as its ids, an object as its id and status.

    A read changes nothing, and the object has its own history (its events, the writes' audit rows),
    so storing (and redacting) the whole body on every GET buys nothing. Error bodies are kept: they
    are small and say why the read was refused.
    """
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        return _summarize_list(data)
    if not isinstance(data, dict) or "error" in data:
        return data
    kept = {name: data[name] for name in _READ_KEPT_FIELDS if name in data}
    return kept or {"fields": sorted(str(name) for name in data)[:50]}


def audit_api_request(*, request, response, body: Any, duration_ms: int) -> AuditLog:
    context = getattr(response, "renderer_context", None) or {}
    view = context.get("view")
    match = getattr(request, "resolver_match", None)
    url_name = getattr(match, "url_name", None) or ""
    basename = getattr(view, "basename", None)
    view_action = getattr(view, "action", None)
    if basename and view_action:
        resource_type = basename
        action = f"{_plural(basename)}.{view_action}"
    else:
        resource_type = url_name.rsplit("-", 1)[0] if url_name else ""
        action = f"{url_name or 'unresolved'}.{request.method.lower()}"
    # The app that owns the route: a view may name it (``audit_service_name``) when its code lives in
    # another package than the routes it serves; otherwise the top package of the view's module.
    service_name = (
        (getattr(view, "audit_service_name", None) or type(view).__module__.split(".")[0])
        if view is not None
        else "api"
    )

    resource_id = ""
    kwargs = getattr(view, "kwargs", None) or (match.kwargs if match else {})
    lookup = getattr(view, "lookup_url_kwarg", None) or getattr(view, "lookup_field", None) or "pk"
    if kwargs:
        resource_id = kwargs.get(lookup) or kwargs.get("pk") or next(iter(kwargs.values()), "")
    data = getattr(response, "data", None)
    if not resource_id and response.status_code == 201 and isinstance(data, dict):
        resource_id = data.get("id", "")

    actor_type, actor_id, merchant_id = _principal_fields(request)
    if data is None and "json" in (response.get("Content-Type") or "") and not response.streaming:
        try:
            data = json.loads(response.content)
        except ValueError:
            data = None

    data = _summarize_read(data) if request.method in _READ_METHODS else _summarize_list(data)
    headers = {name: request.headers[name] for name in _KEPT_HEADERS if name in request.headers}
    request_data = {"method": request.method, "path": request.path}
    if request.GET:
        request_data["query"] = {key: values if len(values) > 1 else values[0] for key, values in request.GET.lists()}
    if headers:
        request_data["headers"] = headers
    if body is not None:
        request_data["body"] = body

    return audit_log_record(
        action=action,
        service_name=service_name,
        resource_type=resource_type,
        resource_id=resource_id,
        merchant_id=merchant_id,
        actor_type=actor_type,
        actor_id=actor_id,
        request=request,
        request_data=request_data,
        response_data=data,
        status_code=response.status_code,
        duration_ms=duration_ms,
    )


# --- Staff actions (the admin) --------------------------------------------------------------------


def audit_staff_action(
    *,
    request,
    action: str,
    resource_type: str = "",
    resource_id: Any = "",
    merchant_id: Any = None,
    data: Any = None,
    result: Any = None,
    status_code: int = 200,
) -> AuditLog:
    """A row for something a staff member did in the back office (``action`` like ``admin.payment.refund``)."""
    user = getattr(request, "user", None)
    request_data = {"method": request.method, "path": request.path, "staff_user": getattr(user, "username", "")}
    if data is not None:
        request_data["data"] = data
    return audit_log_record(
        action=action,
        service_name="admin",
        resource_type=resource_type,
        resource_id=resource_id,
        merchant_id=merchant_id,
        actor_type=AuditLog.ActorType.STAFF,
        actor_id=getattr(user, "pk", "") or "",
        request=request,
        request_data=request_data,
        response_data=result,
        status_code=status_code,
    )


# --- Retention ------------------------------------------------------------------------------------


def audit_log_purge(*, retention_days: int | None = None) -> int:
    days = retention_days if retention_days is not None else settings.AUDIT_RETENTION_DAYS
    return AuditLog.objects.purge_before(timezone.now() - timedelta(days=days))


# --- GDPR: export and erasure of a customer's data ------------------------------------------------


def _model(label: str) -> type[models.Model] | None:
    try:
        return apps.get_model(label)
    except LookupError:
        return None


def _row(instance: models.Model) -> dict[str, Any]:
    data = {field.attname: getattr(instance, field.attname) for field in instance._meta.concrete_fields}
    # The subject's own data, but never card data, tokens or secrets (PCI DSS outranks portability).
    return redact(_jsonable(data), keep_pii=True)


def _customer_querysets(*, merchant, customer_id: str) -> dict[str, models.QuerySet]:
    found: dict[str, models.QuerySet] = {}
    payment_model = _model("payments.Payment")
    if payment_model is not None:
        found["payments"] = payment_model.objects.filter(merchant=merchant, customer_id=customer_id)
        refund_model = _model("payments.Refund")
        if refund_model is not None:
            found["refunds"] = refund_model.objects.filter(payment__in=found["payments"])
    subscription_model = _model("subscriptions.Subscription")
    if subscription_model is not None:
        found["subscriptions"] = subscription_model.objects.filter(merchant=merchant, customer_id=customer_id)
    return found


def _resource_ids(querysets: dict[str, models.QuerySet]) -> list[str]:
    ids: list[str] = []
    for qs in querysets.values():
        ids.extend(str(pk) for pk in qs.values_list("pk", flat=True))
    return ids


def _customer_events(*, merchant, customer_id: str, resource_ids: list[str]) -> models.QuerySet:
    event_model = apps.get_model("webhooks.Event")
    condition = Q(data__customer_id=customer_id)
    if resource_ids:
        condition |= Q(data__id__in=resource_ids)
    return event_model.objects.filter(merchant=merchant).filter(condition)


def customer_data_export(*, merchant, customer_id: str) -> dict[str, Any]:
    """Everything EasyPay holds about one of a merchant's customers, as JSON-ready data (GDPR art. 15/20)."""
    querysets = _customer_querysets(merchant=merchant, customer_id=customer_id)
    resource_ids = _resource_ids(querysets)
    export: dict[str, Any] = {
        "merchant_id": str(merchant.pk),
        "customer_id": customer_id,
        "generated_at": timezone.now().isoformat(),
    }
    for name, qs in querysets.items():
        export[name] = [_row(obj) for obj in qs.order_by("created_at")]
    events = _customer_events(merchant=merchant, customer_id=customer_id, resource_ids=resource_ids)
    export["events"] = [_row(event) for event in events.order_by("created_at")]
    audit_rows = AuditLog.objects.filter(merchant=merchant).filter(
        Q(resource_id__in=resource_ids) | Q(resource_type="customer", resource_id=customer_id)
    )
    export["audit_logs"] = [_row(row) for row in audit_rows.order_by("created_at")]
    from notifications.services import customer_notifications_export

    export["notifications"] = customer_notifications_export(merchant_id=merchant.pk, customer_id=customer_id)
    return export


def erased_values(*, merchant, customer_id: str) -> tuple[str, str]:
    """The pseudonyms an erased customer's name and email become (stable, so repeats change nothing)."""
    tag = hashlib.sha256(f"{merchant.pk}:{customer_id}".encode()).hexdigest()[:12]
    return f"erased-{tag}", f"erased-{tag}@erased.invalid"


def _scrub(value: Any, *, name: str, email: str) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "customer_name" and item:
                out[key] = name
            elif key in ("customer_email", "email") and item:
                out[key] = email
            elif key == "customer_phone" and item:
                out[key] = ""
            else:
                out[key] = _scrub(item, name=name, email=email)
        return out
    if isinstance(value, list):
        return [_scrub(item, name=name, email=email) for item in value]
    return value


@transaction.atomic
def customer_data_erase(*, merchant, customer_id: str, actor, request=None) -> dict[str, int]:
    """Pseudonymize a customer's name and email wherever EasyPay holds them (GDPR art. 17).

    Money records stay intact (amounts, statuses, processor references: a legal obligation to keep);
    ``customer_id`` stays as the merchant's own key. Audit rows hold personal data only as keyed
    fingerprints (see ``audit.redaction``), so the append-only trail needs no change.
    """
    name, email = erased_values(merchant=merchant, customer_id=customer_id)
    counts: dict[str, int] = {}
    querysets = _customer_querysets(merchant=merchant, customer_id=customer_id)
    resource_ids = _resource_ids(querysets)
    if "payments" in querysets:
        # Through the payments service: it locks each row, logs the change and invalidates the API cache.
        from payments.services import payment_update

        counts["payments"] = 0
        for payment in querysets["payments"].exclude(customer_name=name, customer_email=email):
            payment_update(payment=payment, customer_name=name, customer_email=email)
            counts["payments"] += 1
        querysets["payments"].exclude(customer_phone="").update(customer_phone="", updated_at=timezone.now())
    if "subscriptions" in querysets:
        # A plain update: erasure applies to cancelled subscriptions too (which subscription_update
        # refuses), and is no change to announce to the merchant's webhooks.
        qs = querysets["subscriptions"].exclude(customer_name=name, customer_email=email)
        counts["subscriptions"] = qs.update(
            customer_name=name, customer_email=email, customer_phone="", updated_at=timezone.now()
        )
    events = 0
    event_model = apps.get_model("webhooks.Event")
    for event in _customer_events(merchant=merchant, customer_id=customer_id, resource_ids=resource_ids):
        scrubbed = _scrub(event.data, name=name, email=email)
        if scrubbed != event.data:
            event_model.objects.filter(pk=event.pk).update(data=scrubbed)
            events += 1
    counts["events"] = events
    from notifications.services import customer_notifications_pseudonymize

    counts["notifications"] = customer_notifications_pseudonymize(
        merchant_id=merchant.pk, customer_id=customer_id, email=email
    )
    audit_log_record(
        action="admin.customer.erase",
        service_name="admin",
        resource_type="customer",
        resource_id=customer_id,
        merchant_id=merchant.pk,
        actor_type=AuditLog.ActorType.STAFF,
        actor_id=getattr(actor, "pk", "") or "",
        request=request,
        request_data={"customer_id": customer_id, "staff_user": getattr(actor, "username", "")},
        response_data=counts,
        status_code=200,
    )
    return counts
