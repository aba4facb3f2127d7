"""The emulator's two entry points, run as real processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
LOOKUP = (
    b'<?xml version="1.0" encoding="utf-8"?>'
    b'<getTransactionDetailsRequest xmlns="AnetApi/xml/v1/schema/AnetApiSchema.xsd"><merchantAuthentication>'
    b"<name>cmd-login</name><transactionKey>cmd-key</transactionKey></merchantAuthentication>"
    b"<transId>1</transId></getTransactionDetailsRequest>"
)


@pytest.mark.parametrize(
    "command",
    [
        [sys.executable, "-m", "payments.gateways.sandbox"],
        [sys.executable, "manage.py", "anet_sandbox"],
    ],
    ids=["python-m", "manage.py"],
)
def test_entry_point_serves_the_xml_api(command):
    env = {
        **os.environ,
        "AUTHORIZE_NET_API_LOGIN_ID": "cmd-login",
        "AUTHORIZE_NET_TRANSACTION_KEY": "cmd-key",
        "DJANGO_SETTINGS_MODULE": "config.settings.test",
    }
    process = subprocess.Popen(
        [*command, "--port", "0", "--latency-ms", "1", "--json"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        started = json.loads(process.stdout.readline())
        response = requests.post(started["url"], data=LOOKUP, headers={"Content-Type": "application/xml"}, timeout=5)
        config = requests.get(f"http://{started['host']}:{started['port']}/_emulator/config", timeout=5).json()
    finally:
        process.terminate()
        process.wait(timeout=10)

    assert started["url"].endswith("/xml/v1/request.api")
    assert response.status_code == 200
    assert b"<code>E00040</code>" in response.content  # authenticated with the environment's credentials
    assert config["latency_ms"] == 1
