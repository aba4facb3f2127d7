"""OWASP API7 (server-side request forgery) through merchant webhook URLs, under the production rule
``WEBHOOK_ALLOW_PRIVATE_URLS = False``: loopback, private, link-local, metadata, CGNAT, IPv6 and
IPv4-in-IPv6 forms, and the numeric spellings inet_aton accepts (decimal, hex, octal, short) are
refused when an endpoint is saved and again before each delivery; DNS answers that change after saving
are checked at delivery; redirects are never followed. The egress guard (a fake DNS, loopback-only
sockets) proves no connection left for a refused destination."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from webhooks import services, transport
from webhooks.models import EventDelivery, WebhookEndpoint

from .helpers import assert_error, create_endpoint, create_payment

pytestmark = pytest.mark.django_db

FORBIDDEN_URLS = [
    "http://127.0.0.1/hook",
    "http://127.0.0.1:6379/",
    "http://localhost:8000/hook",
    "http://sub.localhost/hook",
    "http://10.0.0.1/hook",
    "http://172.16.5.4/hook",
    "http://192.168.1.1/hook",
    "http://100.64.0.1/hook",  # shared address space (CGNAT)
    "http://169.254.169.254/latest/meta-data/iam/security-credentials/",
    "http://169.254.170.2/v2/credentials",
    "http://100.100.100.200/latest/meta-data/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://0.0.0.0/hook",
    "http://0/hook",
    "http://[::1]/hook",
    "http://[::]/hook",
    "http://[::ffff:127.0.0.1]/hook",
    "http://[::ffff:7f00:1]/hook",
    "http://[64:ff9b::a9fe:a9fe]/hook",  # NAT64 of 169.254.169.254
    "http://[2002:7f00:1::]/hook",  # 6to4 of 127.0.0.1
    "http://[fd00:ec2::254]/latest/meta-data/",
    "http://[fe80::1]/hook",
    "http://2130706433/hook",  # decimal 127.0.0.1
    "http://0x7f.1/hook",  # hex + short form
    "http://0x7f000001/hook",
    "http://017700000001/hook",  # octal
    "http://0177.0.0.1/hook",
    "http://127.1/hook",
    "http://3232235777/hook",  # decimal 192.168.1.1
    "http://2852039166/latest/meta-data/",  # decimal 169.254.169.254
]
MALFORMED_URLS = [
    "file:///etc/passwd",
    "gopher://127.0.0.1:6379/_INFO",
    "ftp://example.com/x",
    "dict://127.0.0.1:11211/stats",
    "http://user:pass@example.com/hook",
    "http://example.com/ho ok",
    "http://example.com/\r\nX-Injected: 1",
    "javascript:alert(1)",
    "//example.com/hook",
    "http:///hook",
]


@pytest.fixture
def production_ssrf_rules(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = False


@pytest.fixture
def sends(monkeypatch) -> list[tuple]:
    """Every (address, port) the webhook transport opened a connection to (a spy: it still sends)."""
    calls: list[tuple] = []
    real = transport._post_to

    def spy(target, address, *args, **kwargs):
        calls.append((address, target.port))
        return real(target, address, *args, **kwargs)

    monkeypatch.setattr(transport, "_post_to", spy)
    return calls


@pytest.mark.parametrize("url", FORBIDDEN_URLS + MALFORMED_URLS)
def test_forbidden_webhook_url_is_refused_at_creation(owner, production_ssrf_rules, egress_guard, sends, url):
    count = WebhookEndpoint.objects.count()
    response = owner.post("/api/v1/webhooks", {"url": url, "events": ["*"]}, format="json")
    body = assert_error(response, 400, "validation_error")
    assert "url" in body["error"]["details"], body
    assert WebhookEndpoint.objects.count() == count
    assert sends == [] and egress_guard.refused_connections == []


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
@pytest.mark.parametrize("method", ["put", "patch"])
def test_forbidden_webhook_url_is_refused_at_update(owner, production_ssrf_rules, method, url):
    endpoint = create_endpoint(owner, url="https://hooks.example.com/ok")
    response = getattr(owner, method)(
        f"/api/v1/webhooks/{endpoint['id']}", {"url": url, "events": ["*"]}, format="json"
    )
    assert_error(response, 400, "validation_error")
    assert WebhookEndpoint.objects.get(pk=endpoint["id"]).url == "https://hooks.example.com/ok"


@pytest.mark.parametrize("url", FORBIDDEN_URLS)
def test_forbidden_destination_is_refused_at_delivery_without_connecting(
    production_ssrf_rules, egress_guard, sends, url
):
    """An endpoint stored before the rules tightened (or by a bug) is still never contacted."""
    result = transport.post(url=url, body=b"{}", headers={"Content-Type": "application/json"}, timeout=1)
    assert result.status_code is None
    assert not result.succeeded
    assert result.error.startswith("destination refused"), result.error
    assert sends == [] and egress_guard.refused_connections == []


def test_dns_answer_changed_after_saving_is_checked_at_delivery(
    owner, anet_sandbox, production_ssrf_rules, egress_guard, sends, django_capture_on_commit_callbacks
):
    """DNS rebinding: public when saved, loopback when delivered -> refused, nothing connects."""
    egress_guard.hosts["rebind.example.com"] = "93.184.216.34"
    endpoint = create_endpoint(owner, url="http://rebind.example.com/hook")
    egress_guard.hosts["rebind.example.com"] = "127.0.0.1"
    with django_capture_on_commit_callbacks(execute=True):
        create_payment(owner)
    deliveries = EventDelivery.objects.filter(endpoint_id=endpoint["id"])
    assert deliveries.exists()
    for delivery in deliveries:
        attempts = list(delivery.attempts.all())
        assert attempts, "the delivery was attempted"
        assert all(a.status_code is None and not a.succeeded for a in attempts)
        assert all("destination refused" in a.error for a in attempts), [a.error for a in attempts]
    assert sends == [] and egress_guard.refused_connections == []


class _Server:
    """A loopback HTTP server answering every POST with a fixed status and headers; records hits."""

    def __init__(self, status: int, headers: dict[str, str] | None = None) -> None:
        hits = self.hits = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                hits.append(self.path)
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(status)
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST

            def log_message(self, *args):
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def redirect_chain():
    """``target`` is the internal service; ``redirector`` answers 302/307/308 to it."""
    target = _Server(200)
    servers = {"target": target}
    for status in (301, 302, 303, 307, 308):
        servers[status] = _Server(status, {"Location": target.url})
    yield servers
    for server in servers.values():
        server.close()


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_not_followed_at_delivery(settings, redirect_chain, status):
    # Loopback is allowed here only so the two local servers can stand in for a public receiver and an
    # internal service; the point is that the Location is never fetched.
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    result = transport.post(url=redirect_chain[status].url, body=b"{}", headers={}, timeout=2)
    assert result.status_code == status
    assert not result.succeeded
    assert redirect_chain[status].hits == ["/hook"]
    assert redirect_chain["target"].hits == []


def test_redirect_answer_fails_the_delivery_attempt(owner, anet_sandbox, settings, redirect_chain):
    settings.WEBHOOK_ALLOW_PRIVATE_URLS = True
    endpoint = create_endpoint(owner, url=redirect_chain[302].url)
    create_payment(owner)
    delivery = EventDelivery.objects.filter(endpoint_id=endpoint["id"]).first()
    services.delivery_attempt_run(delivery_id=delivery.pk)
    delivery.refresh_from_db()
    attempt = delivery.attempts.get()
    assert attempt.status_code == 302 and not attempt.succeeded
    assert delivery.status != EventDelivery.Status.SUCCEEDED
    assert redirect_chain["target"].hits == []
