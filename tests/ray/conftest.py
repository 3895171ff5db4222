"""One Ray head node for every Ray-level test: started once, stopped at the end.

The head is `ray start --head --block` in its own temp dir and on free ports, so it never
meets another Ray instance on the machine; the tests connect to it (the pytest process with
`ray.init(address=...)`, sweep drivers and `ray job submit` through its address). It is
stopped by signalling that one `ray start` process, which takes down exactly the processes
it started (`ray stop` would stop every Ray instance of this user on the machine).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.fixtures.toy_data import write_planted_root
from tests.ray.s3_server import CREDENTIAL_ENV, free_ports, start_seaweed_s3

# Read when Ray is first imported: set before anything here imports it. Token auth is on for
# local clusters in Ray 2.60, and a client of a `ray start` head sends the token
# (~/.ray/auth_token) only in this mode.
os.environ["RAY_AUTH_MODE"] = "token"
os.environ["RAY_AIR_NEW_OUTPUT"] = "0"

REPO = Path(__file__).resolve().parents[2]
RAY_BIN = Path(sys.executable).with_name("ray")
SIG, WEAK_SIG = "m2_tau1_eps0.055_lmin2", "m3_tau2_eps0.1_lmin2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# The test S3 server's port, chosen before any Ray node starts: every node gets the endpoint
# in its environment (AWS_ENDPOINT_URL), so plain s3://bucket/prefix URIs reach the server,
# as they reach a configured endpoint on a real cluster.
S3_PORT = free_ports(1)[0]
S3_ENV = {**CREDENTIAL_ENV, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{S3_PORT}"}


@pytest.fixture(scope="session")
def toy_root(tmp_path_factory) -> Path:
    """Two signatures (strong signal, none) x tasks Q1 and Q3; 120 subjects."""
    return write_planted_root(
        tmp_path_factory.mktemp("ray_data"),
        {SIG: 1.0, WEAK_SIG: 0.0},
        tasks=("Q1", "Q3"),
        n_subjects=120,
    )


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory):
    """(gcs address, dashboard URL, environment for clients) of a fresh head node."""
    temp_dir = (
        Path("/tmp") / f"mmse_ray_{os.getpid()}"
    )  # short: Ray's socket paths are length-limited
    port, dashboard_port = free_port(), free_port()
    env = {
        **os.environ,
        # Token auth is on for local clusters in Ray 2.60; clients of a `ray start` head need
        # this to send the token (~/.ray/auth_token). Never printed.
        "RAY_AUTH_MODE": "token",
        "RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1",
        "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",  # stop at once at the end of the session
        # The test S3 server's key and endpoint (s3_server fixture): every Ray process
        # (controller, workers) inherits the head's environment; the pytest driver's own env
        # does not reach them.
        **S3_ENV,
    }
    with open(tmp_path_factory.mktemp("ray_head") / "ray_start.log", "w") as log:
        head = subprocess.Popen(
            [
                str(RAY_BIN),
                "start",
                "--head",
                "--block",
                "--num-cpus=2",
                "--node-ip-address=127.0.0.1",
                f"--port={port}",
                f"--dashboard-port={dashboard_port}",
                "--dashboard-host=127.0.0.1",
                f"--ray-client-server-port={free_port()}",
                f"--dashboard-agent-listen-port={free_port()}",
                f"--temp-dir={temp_dir}",
                "--disable-usage-stats",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        address, dashboard = f"127.0.0.1:{port}", f"http://127.0.0.1:{dashboard_port}"
        try:
            _wait_for_dashboard(dashboard, head)
            client_env = {**env, "RAY_ADDRESS": address}
            yield Head(address, dashboard, client_env, head.pid, temp_dir)
        finally:
            import ray

            ray.shutdown()
            head.send_signal(signal.SIGTERM)
            try:
                head.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
            # A folder: keep the session (logs, Tune's local staging of experiments) for a
            # post-mortem.
            keep = os.environ.get("MMSE_KEEP_RAY_SESSION")
            if keep:  # best effort: a file that goes while copying is left out (shutil.Error)
                with contextlib.suppress(OSError):
                    shutil.copytree(
                        temp_dir / "session_latest",
                        Path(keep),
                        dirs_exist_ok=True,
                        ignore=shutil.ignore_patterns("sockets", "runtime_resources", "*.sock"),
                    )
            shutil.rmtree(temp_dir, ignore_errors=True)  # this session's logs: tests have read them


@dataclass(frozen=True)
class Head:
    address: str  # GCS address for ray.init / RAY_ADDRESS
    dashboard: str  # URL for `ray job submit --address`
    env: dict  # environment for client processes (auth mode, RAY_ADDRESS)
    pid: int  # the `ray start --block` process: every Ray process of this head descends from it
    temp_dir: Path  # its --temp-dir: session folders (logs, drivers' staging folders)


def _wait_for_dashboard(url: str, head: subprocess.Popen, timeout: float = 60.0) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if head.poll() is not None:
            raise RuntimeError(f"ray start exited with {head.returncode}")
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=2)
            return
        except urllib.error.HTTPError:  # it answers (401 without the token): it is up
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("the Ray head did not come up")


@pytest.fixture(scope="session")
def ray_session(ray_head):
    """The pytest process connected to the shared head (as a sweep's driver would be)."""
    import ray

    ray.init(
        address=ray_head.address,
        runtime_env={"env_vars": {"RAY_TRAIN_HEALTH_CHECK_INTERVAL_S": "0.1"}},
        log_to_driver=False,
    )
    yield ray_head
    ray.shutdown()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """A SeaweedFS S3 server on loopback with the test bucket made; stopped at the end.
    Fails (never skips) when the `weed` binary is missing or does not come up."""
    server = start_seaweed_s3(tmp_path_factory.mktemp("seaweedfs"), s3_port=S3_PORT)
    try:
        yield server
    finally:
        server.stop()
