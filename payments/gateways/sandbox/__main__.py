"""``python -m payments.gateways.sandbox [--port 8999] ...``: the emulator without Django.

Credentials come from AUTHORIZE_NET_API_LOGIN_ID / AUTHORIZE_NET_TRANSACTION_KEY /
AUTHORIZE_NET_SIGNATURE_KEY, with the same defaults as EasyPay's settings.
"""

from __future__ import annotations

import argparse
import logging

from .cli import add_arguments, run
from .server import env_credentials


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m payments.gateways.sandbox", description=__doc__.splitlines()[0])
    add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    run(vars(parser.parse_args(argv)), env_credentials())


if __name__ == "__main__":
    main()
