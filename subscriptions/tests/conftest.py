"""Fixtures of the subscriptions tests."""

from __future__ import annotations

import importlib.util

import pytest

if importlib.util.find_spec("payments.gateways.sandbox.pytest_plugin") is None:
    # Until the shared plugin is registered by the root conftest: the same emulator, in process.
    @pytest.fixture
    def anet_sandbox(settings):
        from payments.gateways import reset_gateway
        from payments.gateways.sandbox.server import SandboxServer

        server = SandboxServer(port=0).start()
        settings.AUTHORIZE_NET_ENDPOINT = server.url
        reset_gateway()
        yield server
        server.stop()
        reset_gateway()
