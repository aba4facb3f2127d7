"""The merchant's active endpoint list is cached for ``event_record``; it must never lose a delivery."""

from __future__ import annotations

from django.core.cache import cache
from django.db import connection
from django.test.utils import CaptureQueriesContext

from webhooks import services
from webhooks.models import EventDelivery
from webhooks.services import endpoints


def _endpoint_selects(queries) -> list[str]:
    return [q["sql"] for q in queries if 'FROM "webhooks_webhookendpoint"' in q["sql"]]


def _expire_marker(merchant) -> None:
    """Forget the cached entry (as its TTL would), so the next event caches the list again."""
    cache.delete(endpoints._endpoints_cache_key(merchant.pk))


def test_endpoint_created_then_event_recorded_immediately_is_delivered(merchant, receiver, endpoint_for, emit):
    emit(merchant)  # caches "no endpoints"
    endpoint, _ = endpoint_for(merchant, receiver.url)
    event = emit(merchant)
    delivery = EventDelivery.objects.get(event=event)
    assert delivery.endpoint_id == endpoint.pk
    assert delivery.status == "succeeded"
    assert [r.headers["EasyPay-Event-Id"] for r in receiver.requests] == [event.id]


def test_cached_list_is_used_without_a_select(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    _expire_marker(merchant)
    emit(merchant)  # reads the database and caches the list
    with CaptureQueriesContext(connection) as ctx:
        event = emit(merchant)
    assert _endpoint_selects(ctx.captured_queries) == []
    assert EventDelivery.objects.get(event=event).endpoint_id == endpoint.pk
    assert len(receiver.requests) == 2


def test_deactivated_endpoint_gets_no_new_deliveries(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    _expire_marker(merchant)
    first = emit(merchant)  # the cached list now holds the endpoint
    services.endpoint_update(endpoint=endpoint, is_active=False)
    second = emit(merchant)
    assert EventDelivery.objects.filter(event=first).count() == 1
    assert not EventDelivery.objects.filter(event=second).exists()
    assert len(receiver.requests) == 1


def test_deleted_endpoint_gets_no_new_deliveries(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    _expire_marker(merchant)
    emit(merchant)
    services.endpoint_delete(endpoint=endpoint)
    event = emit(merchant)
    assert not EventDelivery.objects.filter(event=event).exists()


def test_reactivated_endpoint_and_changed_types_are_seen_at_once(merchant, receiver, endpoint_for, emit):
    endpoint, _ = endpoint_for(merchant, receiver.url, events=["payment.refunded"])
    _expire_marker(merchant)
    captured = emit(merchant, "payment.captured")
    assert not EventDelivery.objects.filter(event=captured).exists()
    services.endpoint_update(endpoint=endpoint, events=["payment.captured"])
    assert EventDelivery.objects.filter(event=emit(merchant, "payment.captured")).count() == 1
    services.endpoint_update(endpoint=endpoint, is_active=False)
    _expire_marker(merchant)
    assert not EventDelivery.objects.filter(event=emit(merchant, "payment.captured")).exists()
    services.endpoint_update(endpoint=endpoint, is_active=True)
    assert EventDelivery.objects.filter(event=emit(merchant, "payment.captured")).count() == 1


def test_endpoint_writes_mark_the_list_stale_now_and_on_commit(
    merchant, receiver, endpoint_for, django_capture_on_commit_callbacks
):
    key = endpoints._endpoints_cache_key(merchant.pk)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        endpoint, _ = endpoint_for(merchant, receiver.url)
    assert cache.get(key) == endpoints._ENDPOINTS_STALE  # before the commit
    cache.set(key, [])  # a reader that read the rows before the commit
    for callback in callbacks:
        callback()
    assert cache.get(key) == endpoints._ENDPOINTS_STALE  # the commit replaced it
    for change in (
        lambda: services.endpoint_update(endpoint=endpoint, description="x"),
        lambda: services.endpoint_rotate_secret(endpoint=endpoint),
        lambda: services.endpoint_delete(endpoint=endpoint),
    ):
        cache.set(key, [])
        change()
        assert cache.get(key) == endpoints._ENDPOINTS_STALE


def test_a_reader_never_overwrites_the_stale_marker(merchant, receiver, endpoint_for):
    endpoint, _ = endpoint_for(merchant, receiver.url)
    key = endpoints._endpoints_cache_key(merchant.pk)
    assert cache.get(key) == endpoints._ENDPOINTS_STALE
    assert endpoints._active_endpoints(merchant.pk) == [(str(endpoint.pk), ("*",))]
    assert cache.get(key) == endpoints._ENDPOINTS_STALE  # read from the database, not cached
    _expire_marker(merchant)
    assert endpoints._active_endpoints(merchant.pk) == [(str(endpoint.pk), ("*",))]
    assert cache.get(key) == {"rows": [(str(endpoint.pk), ("*",))]}


def test_an_empty_list_is_cached_too_on_the_in_process_cache(merchant, emit, settings):
    # django-prometheus's in-process backend answers None for a falsy value: [] was never cached there.
    settings.CACHES = {
        "default": {"BACKEND": "django_prometheus.cache.backends.locmem.LocMemCache", "LOCATION": "endpoints-test"}
    }
    emit(merchant)  # reads the database: no endpoints, cached
    with CaptureQueriesContext(connection) as ctx:
        emit(merchant)
    assert _endpoint_selects(ctx.captured_queries) == []


def test_endpoint_list_is_per_merchant(merchant, other_merchant, receiver, endpoint_for, emit):
    endpoint_for(merchant, receiver.url)
    _expire_marker(merchant)
    emit(merchant)
    assert not EventDelivery.objects.filter(event=emit(other_merchant)).exists()
    assert len(receiver.requests) == 1
