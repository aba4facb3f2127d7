"""Session/CSRF/auth/messages/X-Frame-Options middleware: skipped for cookie-less /api/v1/ calls only."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.test import Client, RequestFactory

from core import middleware


def test_cookieless_api_call_is_detected_by_path_and_cookie():
    factory = RequestFactory()
    assert middleware._cookieless_api_call(factory.get("/api/v1/payments"))
    with_cookie = factory.get("/api/v1/payments")
    with_cookie.COOKIES[settings.SESSION_COOKIE_NAME] = "abc"
    assert not middleware._cookieless_api_call(with_cookie)
    for path in ("/admin/", "/api/docs/", "/api/schema/", "/health", "/metrics", "/api/v2/x"):
        assert not middleware._cookieless_api_call(factory.get(path))


def test_api_call_skips_the_browser_middleware_but_keeps_the_headers(api_client):
    seen = {}

    def view(request):
        seen["session"] = hasattr(request, "session")
        seen["user"] = "user" in request.__dict__

        return HttpResponse("{}", content_type="application/json")

    handler = view
    for cls in reversed(
        (
            middleware.SessionMiddleware,
            middleware.CsrfViewMiddleware,
            middleware.AuthenticationMiddleware,
            middleware.MessageMiddleware,
            middleware.XFrameOptionsMiddleware,
        )
    ):
        handler = cls(handler)
    response = handler(RequestFactory().post("/api/v1/payments", data="{}", content_type="application/json"))
    assert response.status_code == 200  # no CSRF refusal
    assert seen == {"session": False, "user": False}
    assert "Set-Cookie" not in response

    browser = RequestFactory().get("/admin/")
    handler(browser)
    assert seen == {"session": True, "user": True}

    real = api_client.get("/api/v1/payments")
    assert real.status_code == 200
    assert real["X-Frame-Options"] == "DENY"
    assert "Cookie" not in real.get("Vary", "")
    assert not real.cookies


def test_admin_login_still_uses_sessions_and_csrf(db, django_user_model):
    django_user_model.objects.create_superuser("root", password="pw-123456")
    client = Client(enforce_csrf_checks=True)
    page = client.get("/admin/login/")
    assert page.status_code == 200
    assert page["X-Frame-Options"] == "DENY"
    token = page.cookies[settings.CSRF_COOKIE_NAME].value
    assert client.post("/admin/login/", {"username": "root", "password": "pw-123456"}).status_code == 403
    logged_in = client.post(
        "/admin/login/?next=/admin/",
        {"username": "root", "password": "pw-123456", "csrfmiddlewaretoken": token, "next": "/admin/"},
    )
    assert logged_in.status_code == 302
    assert client.get("/admin/").status_code == 200


def test_staff_session_reaches_the_session_authenticated_api_tools(db, django_user_model):
    staff = Client()
    staff.force_login(django_user_model.objects.create_user("ops", password="x", is_staff=True))
    assert staff.get("/api/v1/webhooks/authorize-net/events").status_code == 200
    assert Client().get("/api/v1/webhooks/authorize-net/events").status_code == 401
