"""A Ray cluster of several nodes on this machine, for the multi-node tests.

Each node is one `ray start --block` process in a session of its own, with its own temp dir
(two nodes on one machine cannot share one), so a node is removed by killing that process
group and nothing else: never `ray stop`, which would stop every Ray instance of this user.
Worker nodes listen on their own loopback addresses (127.0.0.2, ...), so a driver on this
machine attaches to the head and each node is told apart by its address.

Node death is noticed within about a second (the GCS health-check settings below), and
every node has the test S3 server's endpoint and key in its environment, as the nodes of a
real cluster have theirs.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RAY_BIN = Path(sys.executable).with_name("ray")


@dataclass
class Node:
    name: str
    ip: str
    process: subprocess.Popen
    temp_dir: Path
    log: Path
    node_id: str = ""
    alive: bool = True


@dataclass
class LocalCluster:
    root: Path
    env: dict  # every node's environment (and the base of its clients')
    port: int = 0
    dashboard: str = ""
    nodes: dict[str, Node] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def client_env(self) -> dict:
        return {**self.env, "RAY_ADDRESS": self.address}

    def start_head(
        self,
        *,
        num_cpus: int,
        resources: dict | None = None,
        labels: str = "",
        port: int,
        dashboard_port: int,
        extra_ports: list[int],
    ) -> Node:
        self.port, self.dashboard = port, f"http://127.0.0.1:{dashboard_port}"
        args = [
            "--head",
            f"--port={port}",
            "--node-ip-address=127.0.0.1",
            f"--dashboard-port={dashboard_port}",
            "--dashboard-host=127.0.0.1",
            f"--ray-client-server-port={extra_ports[0]}",
            f"--dashboard-agent-listen-port={extra_ports[1]}",
        ]
        node = self._start(
            "head", "127.0.0.1", args, num_cpus=num_cpus, resources=resources, labels=labels
        )
        self._wait_for_dashboard(node)
        return self._wait_registered(node)

    def add_node(
        self,
        name: str,
        ip: str,
        *,
        num_cpus: int,
        num_gpus: int = 0,
        resources: dict | None = None,
        labels: str = "",
    ) -> Node:
        args = [f"--address={self.address}", f"--node-ip-address={ip}", f"--num-gpus={num_gpus}"]
        node = self._start(name, ip, args, num_cpus=num_cpus, resources=resources, labels=labels)
        return self._wait_registered(node)

    def _start(
        self,
        name: str,
        ip: str,
        args: list[str],
        *,
        num_cpus: int,
        resources: dict | None,
        labels: str,
    ) -> Node:
        temp_dir = self.root / name  # short: Ray's socket paths are length-limited
        log = self.root / f"{name}.log"
        args = [
            str(RAY_BIN),
            "start",
            "--block",
            *args,
            f"--num-cpus={num_cpus}",
            f"--temp-dir={temp_dir}",
            "--object-store-memory=100000000",
            "--disable-usage-stats",
            "--include-log-monitor=false",
        ]
        if resources:
            args.append(f"--resources={json.dumps(resources)}")
        if labels:
            args.append(f"--labels={labels}")
        with open(log, "w") as out:
            process = subprocess.Popen(
                args, env=self.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        node = Node(name, ip, process, temp_dir, log)
        self.nodes[name] = node
        return node

    def _wait_for_dashboard(self, node: Node, timeout: float = 120.0) -> None:
        import urllib.error
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running(node)
            try:
                urllib.request.urlopen(f"{self.dashboard}/api/version", timeout=2)
                return
            except urllib.error.HTTPError:  # 401 without the token: it is up
                return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the head did not come up:\n{node.log.read_text()[-2000:]}")

    def _check_running(self, node: Node) -> None:
        if node.process.poll() is not None:
            raise RuntimeError(
                f"ray start of {node.name} exited with {node.process.returncode}:\n"
                f"{node.log.read_text()[-2000:]}"
            )

    def _wait_registered(self, node: Node, timeout: float = 120.0) -> Node:
        """Until the GCS lists the node alive (head: the one head; others: by address)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running(node)
            for record in self.list_nodes():
                if record["state"] == "ALIVE" and (
                    record["is_head_node"] if node.name == "head" else record["node_ip"] == node.ip
                ):
                    node.node_id = record["node_id"]
                    return node
            time.sleep(0.5)
        raise RuntimeError(f"node {node.name} did not register:\n{node.log.read_text()[-2000:]}")

    def list_nodes(self) -> list[dict]:
        from ray.util.state import list_nodes

        try:
            return [
                n.__dict__ if not isinstance(n, dict) else n
                for n in list_nodes(address=self.dashboard, limit=100)
            ]
        except Exception:  # noqa: BLE001 - the dashboard is still starting
            return []

    def name_of(self, node_id: str) -> str:
        return next(
            (n.name for n in self.nodes.values() if n.node_id == node_id),
            f"unknown node {node_id[:8]}",
        )

    def kill(self, name: str, timeout: float = 60.0) -> None:
        """Remove a node the hard way (its whole process group, SIGKILL), then wait until the
        GCS has marked it dead."""
        node = self.nodes[name]
        os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait()
        node.alive = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            states = {r["node_id"]: r["state"] for r in self.list_nodes()}
            if states.get(node.node_id) == "DEAD":
                return
            time.sleep(0.2)
        raise RuntimeError(f"node {name} was not marked dead within {timeout} s")

    def stop(self) -> None:
        """Stop every node this cluster started, workers first; only their process groups."""
        for node in sorted(self.nodes.values(), key=lambda n: n.name == "head"):
            if node.process.poll() is not None:
                continue
            node.process.send_signal(signal.SIGTERM)
            try:
                node.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
            try:
                os.killpg(node.process.pid, signal.SIGKILL)  # anything of the node still there
            except ProcessLookupError:
                pass


def cluster_env(extra: dict) -> dict:
    """The nodes' environment: this repository importable, token auth, fast node-death
    detection, quick Train reports, and `extra` (the S3 endpoint and key)."""
    path = os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)
    return {
        **os.environ,
        "PYTHONPATH": path,
        "RAY_AUTH_MODE": "token",
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
        "RAY_health_check_period_ms": "500",
        "RAY_health_check_timeout_ms": "500",
        "RAY_health_check_failure_threshold": "3",
        **extra,
    }
