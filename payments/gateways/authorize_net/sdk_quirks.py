"""Where the adapter works around the official SDK: its loggers, and requests still built with its bindings.

* Logging: ``APIOperationBase.execute()`` logs the whole request XML (card number and CVV included) at
  ERROR on any HTTP exception. :func:`install_log_redaction` puts EasyPay's
  :class:`core.logging.RedactingFilter` on the SDK's loggers, so anything in the process that uses the
  SDK's controllers cannot leak a PAN or CVV into the logs. The adapter itself never logs bodies.
* Serialising: the SDK's ``buildrequest`` writes ``ns1:``-prefixed XML and strips the prefixes with a
  string replace (which also rewrites ``ns1:`` inside values); :func:`serialize` asks pyxb for the
  default namespace directly, which gives the same document. It is pyxb's validating generation, so
  pyxb enforces the XSD's element order and types for the requests not written from templates
  (customer profiles, transaction lists, settled batches).
"""

from __future__ import annotations

import logging
from typing import Any

import pyxb.utils.domutils
from authorizenet import apicontractsv1 as api
from authorizenet.constants import constants as sdk_constants

from core.logging import RedactingFilter

from . import anet_sdk
from .anet_xml import Credentials

_SDK_LOGGERS = ("authorizenet", "authorizenet.sdk", "authorizenet.utility")


def install_log_redaction(*names: str) -> None:
    """Put the redacting filter on the SDK's loggers and on ``names`` (idempotent)."""
    for name in (*_SDK_LOGGERS, *names):
        target = logging.getLogger(name)
        if not any(isinstance(f, RedactingFilter) for f in target.filters):
            target.addFilter(RedactingFilter())


def serialize(request: Any, element_name: str) -> bytes:
    """The request document the SDK would send for a binding object (pyxb's validating generation)."""
    bds = pyxb.utils.domutils.BindingDOMSupport(default_namespace=api.Namespace)
    return request.toDOM(bds, element_name=element_name).toxml(encoding="utf-8")


def sdk_document(request: Any, credentials: Credentials, element_name: str) -> bytes:
    """A request built with the SDK's bindings (those not on the payment path), with our credentials."""
    request.merchantAuthentication = anet_sdk.merchant_authentication(
        credentials.api_login_id, credentials.transaction_key
    )
    request.clientId = sdk_constants.clientId
    return serialize(request, element_name)
