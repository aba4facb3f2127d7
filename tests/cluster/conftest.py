"""Cluster tests: ``scripts/cluster.py up`` (HAProxy, three gunicorn instances, PostgreSQL primary and two
streaming replicas, Redis with Sentinel, two Celery workers, one beat), then faults injected on purpose.
Slow, so they run only with ``make cluster-test`` (everything) or ``make cluster-test-ci`` (the bounded set,
marker ``cluster_ci``), never as part of ``make test``."""

from __future__ import annotations

import json
import os
import sys

import pytest

ENABLED = os.environ.get("EASYPAY_CLUSTER", "").lower() in ("1", "true", "yes")


def pytest_configure(config):
    config.addinivalue_line("markers", "cluster: test against a whole cluster from scripts/cluster.py")
    config.addinivalue_line("markers", "cluster_ci: the bounded set of cluster tests CI runs")


def pytest_collection_modifyitems(config, items):
    if ENABLED:
        return
    skip = pytest.mark.skip(reason="needs a whole cluster: run with make cluster-test (EASYPAY_CLUSTER=1)")
    for item in items:
        if item.get_closest_marker("cluster") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cluster():
    from tests.cluster.harness import Cluster

    instance = Cluster()
    try:
        instance.up()
        yield instance
    finally:
        instance.down()


def pytest_sessionfinish(session, exitstatus):
    """Print what the tests measured (failover times, stale reads, ...) and keep it in a file if asked."""
    module = sys.modules.get("tests.cluster.test_cluster")
    figures = getattr(module, "FIGURES", None)
    if not figures:
        return
    print(f"\ncluster figures: {json.dumps(figures, sort_keys=True)}", file=sys.stderr)
    if os.environ.get("EASYPAY_CLUSTER_FIGURES"):
        with open(os.environ["EASYPAY_CLUSTER_FIGURES"], "w") as out:
            json.dump(figures, out, indent=2, sort_keys=True)
