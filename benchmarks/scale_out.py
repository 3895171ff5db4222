"""Does the sweep get faster with more nodes? One task of the realistic grid on a local Ray
cluster of one, then two, worker nodes of 1 CPU each (the head with 0 CPUs both times).

The trials of one task of the realistic grid (36 signatures x 16 samples, packed: 16 trials,
300 subjects, 100 epochs, ASHA as configs/sweep.yaml ships it, trials training themselves;
planted signal: SYNTHETIC), the nested evaluation off (`evaluation.outer_repeats: 0`, a
20 % test split instead: the trials are what nodes share out). Each cluster is started
fresh (tests/ray/local_cluster.py: one `ray start` per node, worker nodes on 127.0.0.2,
127.0.0.3); the sweep is `mmse sweep` from a fresh process attached to it; the figure is
its driver's `trials` phase (the `time:` line): the scoring after it runs on the driver
whatever the nodes.

    python benchmarks/scale_out.py [--data DIR]

Ends with the line `scale-out speed-up: <ratio>x` (trials on 1 node / trials on 2). On a
2-core machine the two nodes hold every core: the driver, the head's processes and the
trials' start-up share them, which is what keeps the ratio from 2x here.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# The nodes run with token auth (tests/ray/local_cluster.py); this process asks the head's
# dashboard which nodes are up, and sends the token (~/.ray/auth_token) only in this mode.
os.environ["RAY_AUTH_MODE"] = "token"

from mmse_model.sweeps.phases import parse_line
from tests.ray.local_cluster import LocalCluster, cluster_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def sweep_config(path: Path, name: str) -> Path:
    sweep = yaml.safe_load((REPO / "configs" / "sweep.yaml").read_text())
    sweep["name"] = name
    sweep["tasks"] = ["Q1"]
    sweep["evaluation"]["outer_repeats"] = 0
    sweep["config"]["split"]["test_fraction"] = 0.2  # something to score on, cheaply
    path.write_text(yaml.safe_dump(sweep))
    return path


def trials_on(nodes: int, data: Path, scratch: Path) -> float:
    """The trials phase of one task's sweep on `nodes` worker nodes of 1 CPU, in seconds."""
    root = Path("/tmp") / f"mmse_so_{uuid.uuid4().hex[:6]}"  # short: socket paths
    root.mkdir()
    cluster = LocalCluster(root, cluster_env({}))
    try:
        cluster.start_head(
            num_cpus=0,
            port=free_port(),
            dashboard_port=free_port(),
            extra_ports=[free_port(), free_port()],
        )
        for i in range(nodes):
            cluster.add_node(f"worker{i}", f"127.0.0.{2 + i}", num_cpus=1)
        name = f"scale_{nodes}"
        config = sweep_config(scratch / f"{name}.yaml", name)
        log = scratch / f"{name}.log"
        with open(log, "w") as out:
            done = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "mmse_app",
                    "sweep",
                    "--config",
                    str(config),
                    "--data",
                    str(data),
                    "--storage",
                    str(scratch / "runs"),
                ],
                env=cluster.client_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=scratch,
                check=False,
            )
        text = log.read_text()
        if done.returncode != 0:
            sys.stderr.write(text[-4000:])
            raise SystemExit(f"the sweep on {nodes} node(s) exited {done.returncode}")
        return parse_line(text)["trials"]
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="the grid's data root (written there when absent)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale-out-") as folder:
        scratch = Path(folder)
        data = Path(args.data) if args.data else scratch / "data"
        if not any(data.glob("*/Q1.npz")):
            subprocess.run(
                [
                    sys.executable,
                    str(REPO / "benchmarks" / "sweep_overhead.py"),
                    "--write-grid-data",
                    str(data),
                ],
                check=True,
            )
        seconds = {}
        for nodes in (1, 2):
            before = load()
            start = time.perf_counter()
            seconds[nodes] = trials_on(nodes, data, scratch)
            print(
                f"{nodes} worker node(s) of 1 CPU: trials {seconds[nodes]:.1f} s "
                f"(with the cluster's start and stop {time.perf_counter() - start:.0f} s; "
                f"load average before {before})",
                flush=True,
            )
    print("SYNTHETIC grid, one task: 36 signatures x 16 samples, 300 subjects, 100 epochs, ASHA")
    print(f"scale-out speed-up: {seconds[1] / seconds[2]:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
