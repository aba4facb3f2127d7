"""A local Authorize.Net sandbox emulator that the unmodified ``authorizenet`` SDK talks to.

Run it with ``python manage.py anet_sandbox`` or ``python -m payments.gateways.sandbox``, or in
process with :class:`SandboxServer`. See README.md in this directory for what it reproduces.
"""

from .server import SandboxServer
from .state import SandboxState
from .webhooks import sign

__all__ = ["SandboxServer", "SandboxState", "sign"]
