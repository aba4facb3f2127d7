"""Counters of a fuzz run (requests, statuses, operations) for the terminal summary and
``FUZZ_REPORT``."""

from __future__ import annotations

import os
import threading
from collections import Counter


def max_examples() -> int:
    """Examples per operation: 10 in ``make test`` (CI), ``FUZZ_MAX_EXAMPLES`` in ``make fuzz``."""
    return int(os.environ.get("FUZZ_MAX_EXAMPLES", "10"))


def fuzz_seed() -> int:
    """A fixed seed so CI runs are reproducible; ``FUZZ_SEED`` explores other inputs."""
    return int(os.environ.get("FUZZ_SEED", "20250610"))


class FuzzStats:
    """Requests sent and responses by status, per operation, for the run's summary."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests = 0
        self.by_operation: Counter[str] = Counter()
        self.by_status: Counter[int] = Counter()
        self.by_operation_status: Counter[tuple[str, int]] = Counter()

    def record(self, label: str, status: int) -> None:
        with self._lock:
            self.requests += 1
            self.by_operation[label] += 1
            self.by_status[status] += 1
            self.by_operation_status[(label, status)] += 1

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "operations": len(self.by_operation),
            "by_status": {str(k): v for k, v in sorted(self.by_status.items())},
            "by_operation": dict(sorted(self.by_operation.items())),
            "by_operation_status": {
                label: {str(st): n for (lb, st), n in sorted(self.by_operation_status.items()) if lb == label}
                for label in sorted(self.by_operation)
            },
            "max_examples": max_examples(),
            "seed": fuzz_seed(),
        }


STATS = FuzzStats()
