"""`make run`'s Ctrl-C always ends: `scripts/run-dev.sh` gives each process STOP_GRACE_SECONDS after
SIGTERM, then names and kills the one still running (a scheduler stuck in a task, a server that
ignores the signal), and exits 0 with "EasyPay stopped.".

The three processes are stand-ins (``PY`` is a small script): the scheduler's ignores SIGTERM and
SIGINT, the others exit on them, so the test is about the script's stop, not the real commands'.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = ("run_schedule", "runserver", "anet_sandbox")

STANDIN = textwrap.dedent(
    """\
    import os, signal, sys, time
    command = sys.argv[2]
    if command == "run_schedule" and "{stubborn}" == "1":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    # One write of the whole line: the three stand-ins share the log, and an unbuffered print()
    # writes its arguments one by one ("startedstarted  runserver..." once made the wait time out).
    os.write(1, f"started {{command}}\\n".encode())
    time.sleep(120)
    """
)


def _start(tmp_path: Path, *, stubborn: bool) -> tuple[subprocess.Popen, Path]:
    standin = tmp_path / "py"
    standin.write_text(f"#!{sys.executable}\n" + STANDIN.format(stubborn="1" if stubborn else "0"))
    standin.chmod(0o755)
    log = tmp_path / "out.log"
    env = {
        **os.environ,
        "PY": str(standin),
        "STOP_GRACE_SECONDS": "2",
        "EMULATOR_STATE": str(tmp_path / "state.sqlite3"),
        "PORT": "1",
        "EMULATOR_PORT": "2",
    }
    proc = subprocess.Popen(
        ["bash", str(ROOT / "scripts" / "run-dev.sh")],
        cwd=tmp_path,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not all(f"started {command}" in log.read_text() for command in COMMANDS):
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.05)
    return proc, log


def _alive(command: str) -> bool:
    found = subprocess.run(["pgrep", "-f", command], capture_output=True, text=True)
    return bool(found.stdout.strip())


def test_ctrl_c_kills_a_process_that_ignores_sigterm_after_the_grace(tmp_path):
    proc, log = _start(tmp_path, stubborn=True)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    status = proc.wait(timeout=20)
    took = time.monotonic() - started
    text = log.read_text()
    assert status == 0, text
    assert 2 <= took < 10, (took, text)
    assert "the scheduler (pid" in text and "did not stop 2 s after SIGTERM; killed." in text, text
    assert "emulator (pid" not in text and "web server (pid" not in text, text
    assert text.rstrip().endswith("EasyPay stopped."), text
    assert not _alive(str(tmp_path / "py")), "a stand-in outlived the stop"


def test_ctrl_c_of_processes_that_stop_on_sigterm_takes_no_grace(tmp_path):
    proc, log = _start(tmp_path, stubborn=False)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    status = proc.wait(timeout=20)
    text = log.read_text()
    assert status == 0, text
    assert time.monotonic() - started < 2, text
    assert "killed." not in text, text
    assert text.rstrip().endswith("EasyPay stopped."), text
