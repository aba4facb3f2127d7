"""The EasyPay processes of the cluster (web instances, Celery workers and beat) and their environment
(``DIR/env`` for a shell, ``DIR/pids.json``)."""

from __future__ import annotations

import json
import os
import subprocess

from scripts.processes import celery_beat_argv, celery_worker_argv

from .topology import PYTHON, ROOT, VENV_BIN, ClusterError, ClusterState, clean_env, shell_quote, venv_path


class AppMixin(ClusterState):
    def app_env(self, settings: dict[str, str]) -> dict[str, str]:
        env = clean_env()
        env.update(settings)
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT)
        env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        return env

    def manage(self, env: dict, *args: str, timeout: float = 600) -> None:
        result = subprocess.run(  # noqa: S603
            [PYTHON, "manage.py", *args],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if result.returncode != 0:
            raise ClusterError(f"manage.py {' '.join(args)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}")

    def web_argv(self, port: int) -> list[str]:
        return [
            str(VENV_BIN / "gunicorn"),
            "config.wsgi:application",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "--bind",
            f"127.0.0.1:{port}",
            "--graceful-timeout",
            "20",
            # Several instances on one machine: gunicorn's control socket is one fixed path per user.
            "--no-control-socket",
        ]

    def worker_argv(self, index: int) -> list[str]:
        return celery_worker_argv(str(VENV_BIN / "celery"), hostname=f"worker{index}-{os.getpid()}@%h")

    def beat_argv(self, name: str = "beat") -> list[str]:
        return celery_beat_argv(str(VENV_BIN / "celery"), pidfile=str(self.dir / f"{name}.pid"), max_interval=5)

    def write_env(self, settings: dict[str, str]) -> None:
        lines = [
            "# EasyPay cluster (scripts/cluster.py): `. DIR/env` then `python manage.py ...` talks to it.",
            *(f"export {name}={shell_quote(value)}" for name, value in settings.items()),
            # `python` and `celery` are the project's virtualenv's, so `python manage.py ...` just works
            # (a literal value: a reader that parses these lines without a shell gets a usable PATH too).
            f"export PATH={shell_quote(venv_path())}",
        ]
        (self.dir / "env").write_text("\n".join(lines) + "\n")

    def write_pids(self) -> None:
        pids = {name: entry["pid"] for name, entry in self.state["processes"].items()}
        (self.dir / "pids.json").write_text(json.dumps(pids, indent=2) + "\n")
