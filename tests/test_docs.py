"""The documentation under docs/ tells the truth about the code, and stands on its own.

- README.md and docs/ name nothing outside the repository.
- Every environment variable the settings read is documented under docs/operations/.
- Every test card token the gateway accepts is on the test cards page, and every error code the
  exception handler can produce is on the errors page.
- The signature-verification snippets on the webhooks page (Python, and Node.js when ``node`` is
  installed) accept a real delivery signed by EasyPay, during a secret rotation too, and refuse
  tampered, foreign-secret and stale ones.
- Every page in mkdocs.yml's nav exists, and every page exists in the nav.
"""

from __future__ import annotations

import ast
import base64
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from webhooks import signing

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SETTINGS_DIR = ROOT / "config" / "settings"

ENV_READERS = {"getenv"}
# The django-environ reader of config/settings/components/env.py: env.str("NAME", ...), env.int(...) ...
ENV_OBJECT = "env"


def _doc_pages() -> list[Path]:
    return sorted(DOCS.rglob("*.md"))


def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def settings_env_vars() -> set[str]:
    """Names of the environment variables read in config/settings and gunicorn.conf.py (env.<cast>(),
    os.environ.get(), os.getenv(), os.environ[...])."""
    names: set[str] = set()
    for path in [*SETTINGS_DIR.rglob("*.py"), ROOT / "gunicorn.conf.py"]:
        tree = ast.parse(_text(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
                func = node.func
                name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
                is_environ_get = (
                    isinstance(func, ast.Attribute)
                    and func.attr == "get"
                    and isinstance(func.value, ast.Attribute)
                    and func.value.attr == "environ"
                )
                is_env_read = (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Name)
                    and func.value.id == ENV_OBJECT
                    and not func.attr.endswith("_config")
                )
                if (name in ENV_READERS or is_environ_get or is_env_read) and isinstance(node.args[0].value, str):
                    names.add(node.args[0].value)
            if (
                isinstance(node, ast.Subscript)
                and isinstance(node.value, ast.Attribute)
                and node.value.attr == "environ"
                and isinstance(node.slice, ast.Constant)
            ):
                names.add(node.slice.value)
    return names


# --- the docs stand on their own ------------------------------------------------------------------


def test_readme_and_docs_name_nothing_outside_the_repository():
    offenders = []
    for path in [ROOT / "README.md", ROOT / "mkdocs.yml", *_doc_pages()]:
        text = _text(path)
        for needle in ("CONTRACT.md", "../shared", "shared docs"):
            if needle.lower() in text.lower():
                offenders.append(f"{path.relative_to(ROOT)}: {needle}")
    assert offenders == []


def test_readme_starts_with_the_two_commands_and_links_the_docs():
    readme = _text(ROOT / "README.md")
    first_block = re.search(r"```bash\n(.*?)```", readme, re.S)
    assert first_block is not None
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands[:2] == ["make run", "make test"]
    assert "docs/" in readme
    for target in re.findall(r"\]\((docs/[^)#]+)", readme):
        assert (ROOT / target).exists(), target


def test_settings_parser_finds_the_env_vars():
    """The parser the next test relies on sees the variables it must (a parser finding nothing would
    make that test pass vacuously)."""
    found = settings_env_vars()
    for name in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY", "WEBHOOK_RETRY_SCHEDULE_SECONDS", "SECURE_SSL_REDIRECT"):
        assert name in found
    assert len(found) > 50


def test_every_env_var_read_by_the_settings_is_documented_in_operations():
    operations = "\n".join(_text(p) for p in sorted((DOCS / "operations").glob("*.md")))
    missing = sorted(name for name in settings_env_vars() if f"`{name}`" not in operations)
    assert missing == [], f"document these in docs/operations/settings.md: {missing}"


def test_every_documented_variable_is_read_somewhere():
    """The other way round: a variable in the settings page's tables is still read by EasyPay or its
    tools (a renamed or removed setting does not linger in the documentation)."""
    page = _text(DOCS / "operations" / "settings.md")
    documented = set(re.findall(r"^\| `([A-Z][A-Z0-9_]+)`", page, re.M))
    assert len(documented) > 50
    sources = [
        p
        for p in [*ROOT.glob("*/**/*.py"), *ROOT.glob("*.py"), *ROOT.glob("scripts/*.sh"), ROOT / "Makefile"]
        if not {"tests", "migrations", ".venv"} & set(p.relative_to(ROOT).parts)
    ]
    code = "\n".join(_text(p) for p in sources)
    assert sorted(n for n in documented if not re.search(rf"\b{n}\b", code)) == []


def test_every_test_card_token_is_documented():
    from payments.gateways.tokens import TEST_TOKENS

    page = _text(DOCS / "test-cards.md")
    for token, card in TEST_TOKENS.items():
        row = next((line for line in page.splitlines() if line.startswith(f"| `{token}` |")), None)
        assert row is not None, token
        assert card.number in row, (token, card.number)


def test_every_error_code_is_documented():
    import core.exceptions as exc_module

    source = _text(ROOT / "core" / "exceptions.py") + _text(ROOT / "core" / "middleware.py")
    handler_codes = set(re.findall(r'_response\(\s*\d{3},\s*"([a-z_]+)"', source))
    handler_codes |= set(re.findall(r'json_error_response\(\s*request,\s*\d{3},\s*"([a-z_]+)"', source))
    class_codes = {
        cls.code
        for cls in vars(exc_module).values()
        if isinstance(cls, type) and issubclass(cls, exc_module.EasyPayError) and cls is not exc_module.EasyPayError
    }
    codes = handler_codes | class_codes
    assert {"validation_error", "payload_too_large", "unsupported_media_type", "rate_limited"} <= codes
    page = _text(DOCS / "errors.md")
    missing = sorted(code for code in codes if f"`{code}`" not in page)
    assert missing == []


def test_every_event_type_and_permission_is_documented():
    from accounts.scopes import SCOPES
    from webhooks.services import EVENT_TYPES

    webhooks_page = _text(DOCS / "webhooks.md")
    assert [t for t in EVENT_TYPES if f"`{t}`" not in webhooks_page] == []
    auth_page = _text(DOCS / "guides" / "authentication.md")
    assert [s for s in SCOPES if f"| `{s}` |" not in auth_page] == []


def test_every_scheduled_task_is_documented():
    from django.conf import settings

    page = _text(DOCS / "operations" / "processes.md")
    missing = [
        name for name, entry in settings.CELERY_BEAT_SCHEDULE.items() if f"| `{name}` | `{entry['task']}` |" not in page
    ]
    assert missing == []


def _seconds(text: str) -> int:
    number, unit = text.split()
    return int(number) * {"seconds": 1, "minutes": 60, "hours": 3600}[unit.rstrip("s") + "s"]


def test_the_documented_webhook_retry_schedule_is_the_default_one():
    from config.settings import base

    page = _text(DOCS / "webhooks.md")
    rows = re.findall(r"^\| (\d+) \| (\d+ (?:seconds?|minutes?|hours?)) \|$", page, re.M)
    assert [int(n) for n, _ in rows] == list(range(1, len(rows) + 1))
    assert [_seconds(wait) for _, wait in rows] == base.WEBHOOK_RETRY_SCHEDULE_SECONDS
    assert f"| {len(rows) + 1} | none: the delivery is marked `failed` |" in page


def test_the_documented_rate_limit_headers_are_the_ones_sent():
    from accounts.ratelimit import Decision, WindowState

    windows = tuple(
        WindowState(name=n, seconds=s, limit=2, count=2, reset=5)
        for n, s in (("minute", 60), ("hour", 3600), ("day", 86400))
    )
    headers = Decision(allowed=False, windows=windows, keys=(), backend="cache").headers()
    page = _text(DOCS / "rate-limits.md")
    for name in headers:
        short = name.replace("-Minute", "").replace("-Hour", "").replace("-Day", "")
        assert f"`{name}`" in page or f"`{short}-Minute`" in page, name


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            for value in item.values():
                out.extend(_nav_pages(value) if isinstance(value, list) else [value])
    return out


def test_nav_and_pages_match():
    config = yaml.safe_load(_text(ROOT / "mkdocs.yml"))
    nav = _nav_pages(config["nav"])
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert missing == []
    # A page left out of the nav is built but unreachable (and `mkdocs build --strict` refuses it).
    unlisted = [str(p.relative_to(DOCS)) for p in _doc_pages() if str(p.relative_to(DOCS)) not in nav]
    assert unlisted == [], f"add these pages to mkdocs.yml nav: {unlisted}"


def test_the_site_builds_strictly(tmp_path):
    """What `make docs-build` and CI run: a broken link, a missing anchor or a page left out of the
    nav fails the build."""
    mkdocs = Path(sys.executable).with_name("mkdocs")
    run = subprocess.run(
        [str(mkdocs), "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "site" / "webhooks" / "index.html").is_file()


# --- the webhook signature snippets ---------------------------------------------------------------


def fenced_block(page: Path, title: str) -> str:
    """The code of the fenced block whose info string has ``title="<title>"``."""
    match = re.search(r'^```[a-z]+ title="' + re.escape(title) + r'"\n(.*?)^```', _text(page), re.S | re.M)
    assert match is not None, f'no block titled "{title}" in {page}'
    return match.group(1)


@pytest.fixture
def python_verifier(tmp_path):
    """The Python snippet, saved as the file its title names and imported like a merchant would."""
    path = tmp_path / "verify_easypay.py"
    path.write_text(fenced_block(DOCS / "webhooks.md", "verify_easypay.py"))
    spec = importlib.util.spec_from_file_location("verify_easypay", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.verify_easypay_signature


class _Receiver:
    def __init__(self):
        self.requests: list[tuple[dict, bytes]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks/easypay"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def signed_deliveries(api_client, anet_sandbox, django_capture_on_commit_callbacks):
    """Real deliveries from EasyPay to a local receiver: a captured payment's event under the endpoint's
    secret, then a refund's event during a secret rotation (signed with the new and the old secret)."""
    receiver = _Receiver()
    try:
        with django_capture_on_commit_callbacks(execute=True):
            created = api_client.post("/api/v1/webhooks", {"url": receiver.url, "events": ["*"]}, format="json").json()[
                "data"
            ]
        with django_capture_on_commit_callbacks(execute=True):
            payment = api_client.post(
                "/api/v1/payments",
                {"amount": "25.99", "currency": "USD", "card_token": "tok_visa_4242"},
                format="json",
            )
        assert payment.status_code == 201
        first = [r for r in receiver.requests if json.loads(r[1])["type"] == "payment.captured"]
        assert len(first) == 1
        with django_capture_on_commit_callbacks(execute=True):
            rotated = api_client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret").json()["data"]
        with django_capture_on_commit_callbacks(execute=True):
            refund = api_client.post(f"/api/v1/payments/{payment.json()['data']['id']}/refund", {}, format="json")
        assert refund.status_code == 200
        during_rotation = [r for r in receiver.requests if json.loads(r[1])["type"] == "payment.refunded"]
        assert len(during_rotation) == 1
        yield {
            "secret": created["secret"],
            "new_secret": rotated["secret"],
            "first": first[0],
            "rotation": during_rotation[0],
        }
    finally:
        receiver.close()


def _cases(d: dict) -> list[tuple[str, bytes, str, str, bool]]:
    """(name, body, header, secret, expected) for both snippets."""
    headers, body = d["first"]
    rot_headers, rot_body = d["rotation"]
    header = headers["EasyPay-Signature"]
    stale = signing.easypay_signature_header([d["secret"]], int(time.time()) - 3600, body)
    future = signing.easypay_signature_header([d["secret"]], int(time.time()) + 3600, body)
    return [
        ("real delivery", body, header, d["secret"], True),
        ("tampered body", body.replace(b"25.99", b"99.99"), header, d["secret"], False),
        ("extra byte", body + b" ", header, d["secret"], False),
        ("other secret", body, header, "whsec_" + "0" * 48, False),
        ("stale timestamp", body, stale, d["secret"], False),
        ("future timestamp", body, future, d["secret"], False),
        ("no v1", body, header.split(",")[0], d["secret"], False),
        ("empty header", body, "", d["secret"], False),
        ("garbage header", body, "t=abc,v1=\u00e9", d["secret"], False),
        ("rotation, new secret", rot_body, rot_headers["EasyPay-Signature"], d["new_secret"], True),
        ("rotation, old secret", rot_body, rot_headers["EasyPay-Signature"], d["secret"], True),
        ("rotation, new secret on the first delivery", body, header, d["new_secret"], False),
    ]


def test_delivery_carries_the_documented_headers_and_two_signatures_during_rotation(signed_deliveries):
    headers, body = signed_deliveries["first"]
    for name in ("EasyPay-Signature", "EasyPay-Event-Id", "EasyPay-Event-Type", "EasyPay-Delivery-Id"):
        assert name in headers
    assert headers["User-Agent"] == "EasyPay-Webhooks/1"
    assert headers["EasyPay-Delivery-Attempt"] == "1"
    event = json.loads(body)
    assert set(event) == {"id", "type", "created", "sequence", "data"}
    assert event["sequence"] == 1  # the payment's first event
    assert event["id"] == headers["EasyPay-Event-Id"]
    rotation_header = signed_deliveries["rotation"][0]["EasyPay-Signature"]
    assert rotation_header.count("v1=") == 2


def test_python_snippet_verifies_easypay_signatures(python_verifier, signed_deliveries):
    results = {
        name: python_verifier(body, header, secret) for name, body, header, secret, _ in _cases(signed_deliveries)
    }
    expected = {name: want for name, _, _, _, want in _cases(signed_deliveries)}
    assert results == expected


NODE_HARNESS = """
const { verifyEasyPaySignature } = require("./verify_easypay.js");
let input = "";
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = {};
  for (const c of cases) {
    out[c.name] = verifyEasyPaySignature(Buffer.from(c.body, "base64"), c.header, c.secret);
  }
  process.stdout.write(JSON.stringify(out));
});
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: the Node.js snippet cannot run")
def test_node_snippet_verifies_easypay_signatures(signed_deliveries, tmp_path):
    (tmp_path / "verify_easypay.js").write_text(fenced_block(DOCS / "webhooks.md", "verify_easypay.js"))
    (tmp_path / "harness.js").write_text(NODE_HARNESS)
    cases = _cases(signed_deliveries)
    payload = [
        {"name": name, "body": base64.b64encode(body).decode(), "header": header, "secret": secret}
        for name, body, header, secret, _ in cases
    ]
    run = subprocess.run(
        ["node", "harness.js"], cwd=tmp_path, input=json.dumps(payload), capture_output=True, text=True, timeout=60
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {name: want for name, _, _, _, want in cases}
