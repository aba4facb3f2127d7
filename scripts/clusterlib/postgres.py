"""The cluster's PostgreSQL: a primary (``initdb``) and streaming replicas (``pg_basebackup -R``), run as
the ``postgres`` system user when we are root (``initdb`` refuses root)."""

from __future__ import annotations

import os
import pwd
import subprocess
import tempfile
from pathlib import Path

from .topology import DB_NAME, ClusterError, ClusterState, log, pg_bin


class PostgresMixin(ClusterState):
    def _as_pg(self, argv: list[str], timeout: float = 300) -> subprocess.CompletedProcess:
        kwargs: dict = {}
        if self.pg_user:
            entry = pwd.getpwnam(self.pg_user)
            kwargs.update(user=entry.pw_uid, group=entry.pw_gid, extra_groups=[])
        return subprocess.run(  # noqa: S603
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd="/",
            stdin=subprocess.DEVNULL,
            **kwargs,
        )

    def _pg_root(self) -> Path:
        """``DIR/pg``, or a directory of its own when the postgres user cannot reach ``DIR``."""
        inside = self.dir / "pg"
        inside.mkdir(exist_ok=True)
        if not self.pg_user:
            return inside
        entry = pwd.getpwnam(self.pg_user)
        os.chown(inside, entry.pw_uid, entry.pw_gid)
        probe = self._as_pg(["/bin/sh", "-c", f'test -w "{inside}" && test -x "{inside}"'])
        if probe.returncode == 0:
            return inside
        outside = Path(tempfile.mkdtemp(prefix="easypay-cluster-pg-"))
        os.chown(outside, entry.pw_uid, entry.pw_gid)
        self.state["pg_dirs"].append(str(outside))
        self.save()
        (inside / "WHERE").write_text(f"{outside}\n")
        return outside

    def _pg_conf(self, data: Path, port: int, sockets: Path, replica: bool) -> None:
        lines = [
            "",
            "# easypay cluster",
            f"port = {port}",
            "listen_addresses = '127.0.0.1'",
            f"unix_socket_directories = '{sockets}'",
            "max_connections = 300",
            "shared_buffers = 64MB",
            "fsync = off",
            "synchronous_commit = off",
            "full_page_writes = on",
            "wal_level = replica",
            "max_wal_senders = 10",
            "wal_keep_size = 512MB",
            "hot_standby = on",
            "hot_standby_feedback = on",
            "max_standby_streaming_delay = 30s",
            "logging_collector = off",
        ]
        with open(data / "postgresql.auto.conf" if replica else data / "postgresql.conf", "a") as conf:
            conf.write("\n".join(lines) + "\n")

    def _pg_start(self, name: str, data: Path) -> int:
        result = self._as_pg(
            [pg_bin("pg_ctl"), "-D", str(data), "-l", str(data.parent / f"{name}.log"), "-w", "-t", "120", "start"]
        )
        if result.returncode != 0:
            log_text = (
                (data.parent / f"{name}.log").read_text(errors="replace")[-2000:]
                if (data.parent / f"{name}.log").exists()
                else ""
            )
            raise ClusterError(
                f"pg_ctl start ({name}) failed: {result.stdout[-1000:]} {result.stderr[-1000:]} {log_text}"
            )
        pid = int((data / "postmaster.pid").read_text().splitlines()[0])
        self.remember(name, pid, kind="postgres", data=str(data))
        log(f"started {name} (postmaster pid {pid})")
        return pid

    def start_postgres(self, base: int, replicas: int) -> tuple[str, list[str]]:
        root = self._pg_root()
        self.state["pg_root"] = str(root)
        primary_port = self.pick_port(base)
        primary = root / "primary"
        result = self._as_pg(
            [pg_bin("initdb"), "-D", str(primary), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]
        )
        if result.returncode != 0:
            raise ClusterError(f"initdb failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
        self._pg_conf(primary, primary_port, root, replica=False)
        with open(primary / "pg_hba.conf", "a") as hba:
            hba.write("host replication all 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 trust\n")
        self._pg_start("pg-primary", primary)
        self.state["pg"] = {"primary_port": primary_port, "replica_ports": []}
        create = self._as_pg(
            [
                pg_bin("psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(primary_port),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-qAtc",
                f"CREATE DATABASE {DB_NAME}",
            ]
        )
        if create.returncode != 0:
            raise ClusterError(f"CREATE DATABASE failed: {create.stderr[-1000:]}")
        replica_urls = []
        for index in range(1, replicas + 1):
            port = self.pick_port(base + index)
            data = root / f"replica{index}"
            backup = self._as_pg(
                [
                    pg_bin("pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary_port),
                    "-U",
                    "postgres",
                    "-D",
                    str(data),
                    "-R",
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                ],
                timeout=600,
            )
            if backup.returncode != 0:
                raise ClusterError(f"pg_basebackup failed: {backup.stdout[-1000:]} {backup.stderr[-1000:]}")
            self._pg_conf(data, port, root, replica=True)
            self._pg_start(f"pg-replica{index}", data)
            self.state["pg"]["replica_ports"].append(port)
            replica_urls.append(f"postgres://postgres@127.0.0.1:{port}/{DB_NAME}")
        self.save()
        return f"postgres://postgres@127.0.0.1:{primary_port}/{DB_NAME}", replica_urls
