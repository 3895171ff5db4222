"""The CUDA path: one `mmse train` run on Ray with `ray.use_gpu`, against the same run on
the CPU. It needs a machine with a CUDA device and a CUDA build of torch, so it is skipped
elsewhere; where Train workers go when a node declares GPUs is tested without one
(logical GPUs, tests/ray/test_multinode.py)."""

from __future__ import annotations

import pytest
import torch

from mmse_model.core.config import Config
from mmse_model.training.loop import RunSpec
from mmse_model.training.runs import train_and_report, train_in_process
from ray_jobs.train import ray_runner
from tests.ray.conftest import SIG

pytestmark = [
    pytest.mark.ray,
    pytest.mark.skipif(
        not torch.cuda.is_available(),
        reason="no CUDA device here (torch.cuda.is_available() is false): the CUDA path waits for "
        "a machine with a GPU",
    ),
]


def test_a_run_on_the_gpu_ends_where_the_cpu_run_ends(ray_session, toy_root, tmp_path):
    import ray

    if ray.cluster_resources().get("GPU", 0) < 1:
        pytest.skip("the Ray head declares no GPU")
    overrides = [
        "training.epochs=6",
        "split.folds=3",
        "training.checkpoint_every=0",
        "ray.cpus_per_worker=0.5",
    ]
    gpu = train_and_report(
        RunSpec(
            str(toy_root), (SIG,), "Q1", Config().with_overrides([*overrides, "ray.use_gpu=true"])
        ),
        tmp_path / "gpu",
        ray_runner(str(tmp_path / "storage")),
        "ray",
    )
    cpu = train_and_report(
        RunSpec(str(toy_root), (SIG,), "Q1", Config().with_overrides(overrides)),
        tmp_path / "cpu",
        train_in_process(),
        "in-process",
    )
    assert gpu.epochs_run == cpu.epochs_run
    assert gpu.test["rmse"] == pytest.approx(cpu.test["rmse"], rel=1e-3)
    assert gpu.selection["rmse"] == pytest.approx(cpu.selection["rmse"], rel=1e-3)
