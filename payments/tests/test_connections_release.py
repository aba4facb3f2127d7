"""A payment hands its pooled database connection back before calling the processor (issue #18):
a slow processor must not hold connections, or the pool's size caps the payments in flight."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from payments.services import common


class _Connection:
    def __init__(self, *, pooled: bool, open_: bool = True, in_atomic_block: bool = False):
        self.settings_dict = {"OPTIONS": {"pool": {"max_size": 4}} if pooled else {}}
        self.connection = object() if open_ else None
        self.in_atomic_block = in_atomic_block
        self.closed = 0

    def close(self):
        self.closed += 1
        self.connection = None


@pytest.fixture
def handler(monkeypatch):
    made: list[_Connection] = []
    monkeypatch.setattr(common, "connections", SimpleNamespace(all=lambda initialized_only: list(made)))
    return made


def test_a_pooled_idle_connection_goes_back_to_its_pool(handler):
    handler.append(_Connection(pooled=True))
    common.connections_release()
    assert handler[0].closed == 1


@pytest.mark.parametrize(
    "connection",
    [
        _Connection(pooled=False),  # a persistent per-thread connection: closing it means reconnecting
        _Connection(pooled=True, in_atomic_block=True),  # a transaction is open: never cut it
        _Connection(pooled=True, open_=False),  # nothing held
    ],
    ids=["persistent", "in-a-transaction", "not-connected"],
)
def test_other_connections_are_left_alone(handler, connection):
    handler.append(connection)
    common.connections_release()
    assert connection.closed == 0


@pytest.mark.django_db
def test_a_charge_releases_before_the_processor_is_called(api_client, anet_sandbox, monkeypatch):
    from payments.services import charges
    from payments.tests.factories import create

    order = []
    monkeypatch.setattr(charges, "connections_release", lambda: order.append("release"))
    real = charges.get_gateway

    class _Recording:
        def __init__(self, gateway):
            self._gateway = gateway

        def charge(self, request):
            order.append("charge")
            return self._gateway.charge(request)

    monkeypatch.setattr(charges, "get_gateway", lambda: _Recording(real()))
    assert create(api_client).status_code == 201
    assert order == ["release", "charge"]
