"""The audit app's recorder of staff actions in the admin, registered with ``core.adminlib`` from
``AuditConfig.ready``: one ``admin.<model>.<verb>`` row per action, attributed to the object's merchant."""

from __future__ import annotations

from typing import Any

from .services import audit_staff_action


def merchant_id_of(obj) -> Any:
    from accounts.models import Merchant

    if isinstance(obj, Merchant):
        return obj.pk
    merchant_id = getattr(obj, "merchant_id", None)
    if merchant_id is None and hasattr(obj, "payment"):
        merchant_id = getattr(getattr(obj, "payment", None), "merchant_id", None)
    if merchant_id is None and hasattr(obj, "endpoint"):
        merchant_id = getattr(getattr(obj, "endpoint", None), "merchant_id", None)
    return merchant_id


def record_admin_action(*, request, obj, action: str, data: Any, result: Any, status_code: int):
    return audit_staff_action(
        request=request,
        action=action,
        resource_type=obj._meta.model_name,
        resource_id=obj.pk,
        merchant_id=merchant_id_of(obj),
        data=data,
        result=result,
        status_code=status_code,
    )
