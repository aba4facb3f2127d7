"""The permission scopes of CONTRACT section 3."""

ALL = "*"
SCOPES: tuple[str, ...] = (
    "payments:read",
    "payments:write",
    "subscriptions:read",
    "subscriptions:write",
    "webhooks:read",
    "webhooks:write",
    "api_keys:read",
    "api_keys:write",
    "audit:read",
    "notifications:read",
    "notifications:write",
)
VALID = frozenset(SCOPES) | {ALL}


def grants(held: list[str] | tuple[str, ...] | frozenset[str], scope: str) -> bool:
    return ALL in held or scope in held


def expand(held) -> list[str]:
    """The concrete scopes a permission list grants (``*`` -> all)."""
    return list(SCOPES) if ALL in held else [s for s in SCOPES if s in held]


def intersect(a, b) -> list[str]:
    """The permissions both lists grant (``*`` in one side yields the other side)."""
    if ALL in a:
        return list(b)
    if ALL in b:
        return list(a)
    return [s for s in a if s in b]


def covers(held, wanted) -> list[str]:
    """The scopes in ``wanted`` that ``held`` does NOT grant (``*`` wanted needs ``*`` held)."""
    if ALL in held:
        return []
    return [s for s in wanted if s == ALL or s not in held]
