"""pytest fixtures for the Authorize.Net sandbox emulator (registered in the root conftest.py).

* ``anet_sandbox_server`` (session): one :class:`SandboxServer` on a free port for the whole run,
  accepting the credentials the Django settings hold.
* ``anet_sandbox`` (function): that server reset to a clean account and default behaviour, with
  ``settings.AUTHORIZE_NET_ENDPOINT`` pointed at it and the gateway cache (and so its circuit
  breaker) dropped before and after the test. Tests drive it through ``.configure(...)``,
  ``.state`` and ``.webhooks``.
"""

from __future__ import annotations

import pytest

from payments.gateways.sandbox import SandboxServer


@pytest.fixture(scope="session")
def anet_sandbox_server():
    from django.conf import settings

    server = SandboxServer(
        "127.0.0.1",
        0,
        api_login_id=settings.AUTHORIZE_NET_API_LOGIN_ID,
        transaction_key=settings.AUTHORIZE_NET_TRANSACTION_KEY,
        signature_key=settings.AUTHORIZE_NET_SIGNATURE_KEY,
        webhook_retry_delays=(0.2, 0.5),
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anet_sandbox(anet_sandbox_server, settings):
    from payments.gateways import reset_gateway

    anet_sandbox_server.reset()
    settings.AUTHORIZE_NET_ENDPOINT = anet_sandbox_server.url
    settings.AUTHORIZE_NET_API_LOGIN_ID = anet_sandbox_server.state.api_login_id
    settings.AUTHORIZE_NET_TRANSACTION_KEY = anet_sandbox_server.state.transaction_key
    settings.AUTHORIZE_NET_SIGNATURE_KEY = anet_sandbox_server.signature_key
    reset_gateway()
    yield anet_sandbox_server
    reset_gateway()
    anet_sandbox_server.reset()
