"""``make fuzz``: the schema fuzz tests with many more examples, the coverage phase, and a JSON report.

Defaults (each overridable by the environment): FUZZ_MAX_EXAMPLES=200 generated requests per
operation (the stateful test runs three times as many sequences), FUZZ_COVERAGE=1 (schemathesis'
boundary values and unsupported methods), FUZZ_SEED (fixed; change it to explore other inputs),
FUZZ_ALLOW_X00 (NUL characters in generated strings, on; 0 leaves them out), FUZZ_REPORT=<tmp>/easypay-fuzz-report.json.
Extra arguments go to pytest. Exit status is pytest's.

    .venv/bin/python tests/fuzz/run_fuzz.py [-x] [-k payments]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    env.setdefault("FUZZ_MAX_EXAMPLES", "200")
    env.setdefault("FUZZ_COVERAGE", "1")
    report = Path(env.setdefault("FUZZ_REPORT", str(Path(tempfile.gettempdir()) / "easypay-fuzz-report.json")))
    command = [sys.executable, "-m", "pytest", "tests/fuzz", "-p", "no:cacheprovider", "-q", *argv]
    print(
        f"make fuzz: {env['FUZZ_MAX_EXAMPLES']} examples per operation, coverage phase "
        f"{'on' if env['FUZZ_COVERAGE'] == '1' else 'off'}, report {report}",
        flush=True,
    )
    # The stateful chains run in a process of their own first (see test_stateful_payment_and_subscription_chains).
    stateful = [sys.executable, "-m", "pytest", "tests/fuzz/test_schema_fuzz.py", "-k", "stateful"]
    rc = subprocess.call(
        [*stateful, "-p", "no:cacheprovider", "-q", *argv], cwd=ROOT, env={**env, "FUZZ_STATEFUL": "1"}
    )
    rc = subprocess.call(command, cwd=ROOT, env=env) or rc
    if report.exists():
        data = json.loads(report.read_text())
        print(f"make fuzz: {data['requests']} requests, {data['operations']} operations, statuses {data['by_status']}")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
