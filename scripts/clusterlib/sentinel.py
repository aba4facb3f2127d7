"""The cluster's Redis: a primary, one replica and three Sentinels (master name ``easypay``)."""

from __future__ import annotations

import shutil

from scripts.processes import port_open

from .topology import SENTINEL_MASTER, ClusterState, binary, clean_env, sbin_path, wait_until


class RedisMixin(ClusterState):
    def start_redis(self, base: int) -> tuple[str, list[tuple[str, int]]]:
        env = clean_env()
        server = binary("redis-server")
        ports = {"redis-primary": self.pick_port(base + 10), "redis-replica": self.pick_port(base + 11)}
        for name, port in ports.items():
            data = self.dir / name
            data.mkdir(exist_ok=True)
            argv = [server, "--port", str(port), "--bind", "127.0.0.1", "--protected-mode", "no", "--dir", str(data)]
            argv += [
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--maxmemory-policy",
                "noeviction",
            ]
            if name == "redis-replica":
                argv += ["--replicaof", "127.0.0.1", str(ports["redis-primary"])]
            self.spawn(name, argv, env)
            wait_until(lambda p=port: port_open(p), 20, f"{name} on port {port}")
        sentinels = []
        sentinel_bin = shutil.which("redis-sentinel", path=sbin_path())
        for index in range(1, 4):
            port = self.pick_port(base + 11 + index)
            data = self.dir / f"sentinel{index}"
            data.mkdir(exist_ok=True)
            conf = data / "sentinel.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\nprotected-mode no\ndaemonize no\ndir {data}\n"
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {ports['redis-primary']} 2\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 2000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 10000\n"
                f"sentinel parallel-syncs {SENTINEL_MASTER} 1\n"
            )
            argv = [sentinel_bin, str(conf)] if sentinel_bin else [server, str(conf), "--sentinel"]
            self.spawn(f"sentinel{index}", argv, env)
            sentinels.append(("127.0.0.1", port))
        for _, port in sentinels:
            wait_until(lambda p=port: port_open(p), 20, f"sentinel on port {port}")
        self.state["redis"] = {**ports, "sentinels": [p for _, p in sentinels]}
        self.save()
        return f"redis://127.0.0.1:{ports['redis-primary']}/0", sentinels
