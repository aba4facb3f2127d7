"""Every operation of the API as the OpenAPI schema (drf-spectacular, what ``/api/schema/`` serves)
describes it: method, path, and what a client can write into (path and query parameters, headers,
the request body's writable properties). A new endpoint appears here by itself."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    path_params: tuple[str, ...]
    query_params: tuple[str, ...]
    headers: tuple[str, ...]
    body_fields: tuple[str, ...]
    body_schema: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def takes_body(self) -> bool:
        return self.method in ("post", "put", "patch", "delete")


@functools.cache
def schema() -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    return SchemaGenerator().get_schema(request=None, public=True)


def resolve(node: dict | None) -> dict:
    node = node or {}
    seen = 0
    while "$ref" in node and seen < 20:
        name = node["$ref"].rsplit("/", 1)[-1]
        node = schema()["components"]["schemas"][name]
        seen += 1
    return node


def _writable_properties(body: dict) -> tuple[str, ...]:
    props = body.get("properties") or {}
    return tuple(name for name, spec in props.items() if not resolve(spec).get("readOnly") and not spec.get("readOnly"))


@functools.cache
def operations() -> tuple[Operation, ...]:
    found = []
    for path, item in schema()["paths"].items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            content = (op.get("requestBody") or {}).get("content") or {}
            body = resolve(content.get("application/json", {}).get("schema"))
            found.append(
                Operation(
                    method=method,
                    path=path,
                    path_params=tuple(p["name"] for p in params if p["in"] == "path"),
                    query_params=tuple(p["name"] for p in params if p["in"] == "query"),
                    headers=tuple(p["name"] for p in params if p["in"] == "header"),
                    body_fields=_writable_properties(body),
                    body_schema=body,
                )
            )
    return tuple(found)


FORMAT_EXAMPLES = {
    "date": "2030-01-01",
    "date-time": "2030-01-01T00:00:00Z",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "someone@example.com",
    "uri": "https://hooks.example.com/x",
}


def placeholder(spec: dict) -> Any:
    """A plausible value for a schema property (its example, enum, default, or by type)."""
    spec = resolve(spec)
    for key in ("example", "default"):
        if key in spec:
            return spec[key]
    if spec.get("enum"):
        return next(v for v in spec["enum"] if v is not None)
    kind = spec.get("type")
    fmt = spec.get("format")
    if kind == "string":
        return {
            "date": "2030-01-01",
            "date-time": "2030-01-01T00:00:00Z",
            "uuid": "00000000-0000-4000-8000-000000000000",
            "email": "someone@example.com",
            "uri": "https://hooks.example.com/x",
        }.get(fmt, "text")
    if kind in ("integer", "number"):
        return spec.get("minimum", 1)
    if kind == "boolean":
        return True
    if kind == "array":
        return [placeholder(spec.get("items") or {"type": "string"})]
    if kind == "object":
        return {}
    return "text"


def baseline_body(op: Operation) -> dict:
    """The required properties with plausible values (the known-valid bodies override this)."""
    body = op.body_schema
    props = body.get("properties") or {}
    return {name: placeholder(props[name]) for name in body.get("required", []) if name in props}
