"""scripts/processes.py: the ports and the Celery command lines every local stack uses."""

from __future__ import annotations

import socket

from scripts import processes


def test_free_port_stays_in_the_range_skips_taken_ports_and_never_repeats(monkeypatch):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        monkeypatch.setenv("EASYPAY_PORT_RANGE", f"{busy}-{busy + 3}")
        monkeypatch.setattr(processes, "_HANDED_OUT", set())
        ports = [processes.free_port() for _ in range(3)]
    assert busy not in ports
    assert len(set(ports)) == 3 and all(busy < p <= busy + 3 for p in ports)


def test_free_port_without_a_range_is_any_bindable_port(monkeypatch):
    monkeypatch.delenv("EASYPAY_PORT_RANGE", raising=False)
    port = processes.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_the_celery_worker_and_beat_command_lines():
    assert processes.celery_worker_argv("celery", hostname="w1@%h", concurrency=4) == [
        "celery", "-A", "config", "worker", "--loglevel", "INFO", "--pool", "prefork", "--concurrency", "4",
        "--without-gossip", "--without-mingle", "--hostname", "w1@%h",
    ]  # fmt: skip
    assert processes.celery_beat_argv("celery", pidfile="/x/beat.pid", max_interval=5) == [
        "celery", "-A", "config", "beat", "--loglevel", "INFO", "--pidfile", "/x/beat.pid", "--max-interval", "5",
    ]  # fmt: skip
    assert "--max-interval" not in processes.celery_beat_argv("celery", pidfile="/x/beat.pid")
