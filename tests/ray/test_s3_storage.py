"""`s3://` storage for real: one TorchTrainer run checkpoints into a SeaweedFS bucket.

No mocks: the `s3_server` fixture runs `weed server -s3` on loopback, and the Ray workers
(which inherit the head's environment, where the conftest put the test key) upload to it
through pyarrow, as they would to AWS.
"""

from __future__ import annotations

import io
import math
import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import torch
from pyarrow import fs as pafs

from mmse_model.core.config import Config
from mmse_model.training.checkpoint import FILENAME, load_checkpoint
from mmse_model.training.loop import RunSpec
from mmse_model.training.runs import train_and_report
from ray_jobs.train import ray_runner
from tests.ray.s3_server import CREDENTIAL_ENV

SIG = "m2_tau1_eps0.055_lmin2"  # the strong signature of the toy_root fixture
REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.ray


def _paths_named(roots: list[Path], names: set[str]) -> list[Path]:
    """Every file or dir under `roots` whose name is one of `names` or starts with `s3:`."""
    hits = []
    for root in roots:
        if not root.is_dir():
            continue
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if d not in {".git", ".venv", "node_modules"}]
            for name in dirnames + filenames:
                if name in names or name.startswith("s3:"):
                    hits.append(Path(dirpath) / name)
    return hits


def test_torchtrainer_checkpoints_to_s3(ray_session, s3_server, toy_root, tmp_path, monkeypatch):
    # The driver (this process) reads the best checkpoint back from the bucket: it needs the
    # key too. Ray's controller and workers have it from the head's environment.
    for key, value in CREDENTIAL_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)  # a storage URI mistaken for a relative path would land here
    prefix = f"runs-{uuid.uuid4().hex[:12]}"
    storage = s3_server.storage_uri(prefix)
    out = tmp_path / "out"
    config = Config().with_overrides(
        [
            "training.epochs=3",
            "split.folds=3",
            "training.checkpoint_every=0",
            "ray.cpus_per_worker=0.5",
        ]
    )

    # fit() in a main thread installs a SIGINT handler that holds the TrainController's
    # handle, which keeps that actor alive after the run; put the old handler back.
    sigint = signal.getsignal(signal.SIGINT)
    try:
        result = train_and_report(
            RunSpec(str(toy_root), (SIG,), "Q1", config), out, ray_runner(storage), "ray"
        )
    finally:
        signal.signal(signal.SIGINT, sigint)

    # The run's checkpoints are objects in the bucket, and the last one is what came back.
    run_key = f"{s3_server.bucket}/{prefix}/{SIG}-Q1"
    fs = s3_server.filesystem()
    objects = [
        i.path
        for i in fs.get_file_info(pafs.FileSelector(run_key, recursive=True))
        if i.type == pafs.FileType.File
    ]
    checkpoint_files = [
        p for p in objects if p.split("/")[-2].startswith("checkpoint_") and p.endswith(FILENAME)
    ]
    assert checkpoint_files, objects
    uri = result.checkpoints
    assert uri.startswith(f"s3://{run_key}/checkpoint_"), uri
    best_key = uri.removeprefix("s3://").split("?")[0].rstrip("/") + f"/{FILENAME}"
    assert best_key in objects, (best_key, objects)

    # The local copy of the model loads, and it is the bucket's last checkpoint, tensor for tensor.
    local = load_checkpoint(out / "model" / FILENAME)
    with fs.open_input_stream(best_key) as stream:
        remote = torch.load(io.BytesIO(stream.read()), map_location="cpu", weights_only=True)
    assert remote["metrics"] == local.metrics and remote["epoch"] == local.epoch == 3
    for name, tensor in local.best_model_state.items():
        assert torch.equal(remote["best_model_state"][name], tensor), name
    assert 1 <= result.best_epoch <= 3
    assert set(result.test) >= {"rmse", "mae", "r2", "pearson_r"}
    assert all(math.isfinite(v) for v in result.test.values()), result.test

    # Nothing was written to local disk under the storage's names (a URI taken for a path).
    ray_temp = Path("/tmp") / f"mmse_ray_{os.getpid()}"
    roots = [tmp_path, REPO, Path.home() / "ray_results", ray_temp]
    assert _paths_named(roots, {s3_server.bucket, prefix}) == []

    # The run is over for Ray too: later modules share this job and check it for leftovers.
    _wait_until_released(ray_session.dashboard)


def _wait_until_released(address: str, timeout: float = 30.0) -> None:
    import ray
    from ray.util.state import list_actors, list_placement_groups

    job = ray.get_runtime_context().get_job_id()
    deadline = time.monotonic() + timeout
    while True:
        groups = [
            g
            for g in list_placement_groups(address=address, limit=1000)
            if g.state != "REMOVED" and g.creator_job_id == job
        ]
        actors = [
            a.class_name
            for a in list_actors(address=address, filters=[("state", "=", "ALIVE")], limit=1000)
            if a.job_id == job
            and ("TrainController" in a.class_name or "RayTrainWorker" in a.class_name)
        ]
        if not (groups or actors) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert not groups, groups
    assert not actors, actors
