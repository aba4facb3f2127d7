"""Authorize.Net adapter on the official ``authorizenet`` SDK (1.1.6), one idea per module.

* :mod:`.config`: credentials, endpoint, timeouts and circuit thresholds, from settings;
* :mod:`.anet_xml` / :mod:`.anet_sdk`: the payment-path requests written from templates, and their
  twins built with the SDK's bindings (a Hypothesis test proves the bytes identical);
* :mod:`.sdk_quirks`: the SDK's loggers redacted, the other requests serialised from its bindings;
* :mod:`.transport`: the HTTP connection pools (urllib3), timeouts, and whether a failed call can have been sent;
* :mod:`.codes`: Authorize.Net's raw codes, which go no further than this package;
* :mod:`.replies`: replies read with lxml into :class:`~payments.gateways.base.GatewayResult` and
  :class:`~payments.gateways.base.TransactionDetails` (normalised states and flags);
* :mod:`.gateway`: :class:`AuthorizeNetGateway`, the operations, with :mod:`.profiles` (CIM customer profiles).

What the SDK's controllers do around the bindings is replaced, because ``APIOperationBase.execute()``
is unsafe for a payment server: the endpoint is a class-wide variable that every controller's
``__init__`` resets to the sandbox URL (two threads race and one can post to the wrong host);
``requests.post`` runs without a timeout; on any HTTP exception it logs the whole request XML, card
number and CVV included, at ERROR; failures come back as ``None``, so a lost reply cannot be told
apart from a decline; it passes ``http_proxy``/``https_proxy`` explicitly, which bypasses
``no_proxy``; and it decodes the reply as ISO-8859-1 and blindly drops three characters (the BOM).

Importing the package installs EasyPay's :class:`core.logging.RedactingFilter` on the SDK's loggers.
"""

from __future__ import annotations

from .sdk_quirks import install_log_redaction

install_log_redaction(__name__)

from .codes import ACCEPT_DESCRIPTOR  # noqa: E402
from .config import AuthorizeNetConfig, resolve_endpoint  # noqa: E402
from .gateway import AuthorizeNetGateway  # noqa: E402
from .replies import outcome_for  # noqa: E402

__all__ = ["ACCEPT_DESCRIPTOR", "AuthorizeNetConfig", "AuthorizeNetGateway", "outcome_for", "resolve_endpoint"]
