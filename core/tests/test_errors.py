"""The domain errors are plain exceptions (no HTTP layer); the one handler maps them to the envelope."""

from __future__ import annotations

import ast
from pathlib import Path

from rest_framework.exceptions import APIException

from core import errors
from core.exceptions import exception_handler

ROOT = Path(__file__).resolve().parents[2]
HTTP_FREE = ["core/errors.py", "payments/payloads.py", "subscriptions/payloads.py", "subscriptions/services.py"]
HTTP_FREE += [
    "subscriptions/billing.py",
    *(str(p.relative_to(ROOT)) for p in (ROOT / "payments/services").glob("*.py")),
]


def test_domain_errors_are_plain_exceptions():
    assert not issubclass(errors.EasyPayError, APIException)
    assert issubclass(errors.RefundLimitExceeded, errors.PermissionDenied)


def test_the_handler_renders_a_domain_error_with_its_code_status_and_data():
    exc = errors.InvalidState("Nope.", details={"amount": ["At most 1.00."]}, data={"id": "p1"})
    response = exception_handler(exc, {})
    assert response.status_code == 409
    assert response.data == {
        "error": {"code": "invalid_state", "message": "Nope.", "details": {"amount": ["At most 1.00."]}},
        "data": {"id": "p1"},
    }
    limited = exception_handler(errors.RateLimited(headers={"Retry-After": "3"}), {})
    assert (limited.status_code, limited["Retry-After"], limited.data["error"]["code"]) == (429, "3", "rate_limited")


def test_services_import_nothing_of_the_http_layer():
    for name in HTTP_FREE:
        tree = ast.parse((ROOT / name).read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                modules = [node.module or ""]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                assert not module.startswith(("rest_framework", "django.http")), (name, module)
                assert ".api" not in module, (name, module)
