"""One TorchTrainer run, and two DDP workers against one (Ray-level)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmse_model.config import Config
from mmse_model.metrics import MONITOR
from mmse_model.trainer import RunSpec, train_task
from ray_jobs.train import run_one

SIG = "m2_tau1_eps0.055_lmin2"  # the strong signature of the toy_root fixture

pytestmark = pytest.mark.ray


class _Keep:
    def report(self, metrics, checkpoint_dir):
        pass


def _config(*extra: str) -> Config:
    return Config().with_overrides(
        ["training.epochs=5", "training.folds=3", "arch.dropout=0.0", "arch.use_batch_norm=false",
         "training.checkpoint_every=0", *extra]
    )


def _in_process(toy_root, config: Config):
    return train_task(RunSpec(str(toy_root), SIG, "Q1", config), _Keep())


def test_single_torchtrainer_run(ray_session, toy_root, tmp_path):
    config = _config()
    result = run_one(str(toy_root), SIG, "Q1", config, tmp_path / "out", storage=str(tmp_path / "storage"))

    assert result["signature"] == SIG and result["task"] == "Q1"
    assert set(result["test"]) >= {"rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept"}
    assert (tmp_path / "out" / "model" / "model.pt").is_file()
    run_dir = tmp_path / "storage" / f"{SIG}-Q1"
    assert any(p.name.startswith("checkpoint_") for p in run_dir.iterdir()), list(run_dir.iterdir())
    assert result["checkpoint_uri"].startswith(str(run_dir))
    # Same seeds, same loop: the Ray worker's best epoch is the in-process run's.
    local = _in_process(toy_root, config)
    assert result["best_epoch"] == local.fit.best_epoch
    assert result["best_val_loss"] == pytest.approx(local.fit.best_val_loss, rel=1e-5)


def test_two_ddp_workers_match_one(ray_session, toy_root, tmp_path):
    # Batch-norm off and no dropout: each worker's shard is then exactly part of the batch.
    two = _config("ray.num_workers=2", "ray.cpus_per_worker=0.5")
    result = run_one(str(toy_root), SIG, "Q1", two, tmp_path / "out", storage=str(tmp_path / "storage"))

    local = _in_process(toy_root, _config())
    best_local = min(local.fit.history, key=lambda r: r[MONITOR])
    assert result["best_epoch"] == int(best_local["epoch"])
    assert result["best_val_loss"] == pytest.approx(best_local[MONITOR], rel=1e-4)
    payload = torch.load(tmp_path / "out" / "model" / "model.pt", weights_only=True)
    for name, tensor in local.checkpoint["model_state"].items():
        np.testing.assert_allclose(payload["model_state"][name].numpy(), tensor.numpy(), rtol=1e-4, atol=1e-5)
