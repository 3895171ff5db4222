"""One TorchTrainer run, and two DDP workers against one (Ray-level)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmse_model.core.config import Config
from mmse_model.training.checkpoint import load_checkpoint
from mmse_model.training.loop import RunSpec, train_run
from mmse_model.training.runs import train_and_report, train_in_process
from ray_jobs.train import ray_runner

SIG = "m2_tau1_eps0.055_lmin2"  # the strong signature of the toy_root fixture

pytestmark = pytest.mark.ray


class _Keep:
    def report(self, metrics, checkpoint_dir):
        pass


def _run(toy_root, *extra: str) -> RunSpec:
    config = Config().with_overrides(
        [
            "training.epochs=5",
            "split.folds=3",
            "arch.dropout=0.0",
            "arch.use_batch_norm=false",
            "training.checkpoint_every=0",
            *extra,
        ]
    )
    return RunSpec(str(toy_root), (SIG,), "Q1", config)


def test_single_torchtrainer_run_matches_the_in_process_one(ray_session, toy_root, tmp_path):
    result = train_and_report(
        _run(toy_root), tmp_path / "ray", ray_runner(str(tmp_path / "storage")), "ray"
    )
    here = train_and_report(_run(toy_root), tmp_path / "here", train_in_process(), "in-process")

    assert (result.signature, result.task, result.runner) == (SIG, "Q1", "ray")
    run_dir = tmp_path / "storage" / f"{SIG}-Q1"
    assert any(p.name.startswith("checkpoint_") for p in run_dir.iterdir()), list(run_dir.iterdir())
    assert result.checkpoints.startswith(str(run_dir))
    # One result.json layout whatever the runner, and the same numbers: same seeds, same loop.
    on_disk = [
        json.loads((tmp_path / name / "result.json").read_text()) for name in ("ray", "here")
    ]
    assert on_disk[0].keys() == on_disk[1].keys()
    assert result.best_epoch == here.best_epoch and result.epochs_run == here.epochs_run == 5
    assert result.selection["rmse"] == pytest.approx(here.selection["rmse"], rel=1e-5)
    assert result.test["rmse"] == pytest.approx(here.test["rmse"], rel=1e-5)


def test_two_ddp_workers_match_one(ray_session, toy_root, tmp_path):
    # Batch-norm off and no dropout: each worker's shard is then exactly part of the batch.
    result = train_and_report(
        _run(toy_root, "ray.num_workers=2", "ray.cpus_per_worker=0.5"),
        tmp_path / "out",
        ray_runner(str(tmp_path / "storage")),
        "ray",
    )
    local = train_run(_run(toy_root), _Keep())
    state = local.checkpoint.states[0]
    assert result.best_epoch == state.best_epoch
    assert result.selection["rmse"] == pytest.approx(state.best_metrics["rmse"], rel=1e-4)
    payload = load_checkpoint(tmp_path / "out" / "model")
    for name, tensor in local.checkpoint.best_model_state.items():
        np.testing.assert_allclose(
            payload.best_model_state[name].numpy(), tensor.numpy(), rtol=1e-4, atol=1e-5
        )


def test_num_workers_zero_trains_in_this_process_and_keeps_its_latest_checkpoint(
    ray_session, toy_root, tmp_path
):
    """`ray.num_workers: 0`: TorchTrainer's local mode trains in the calling process (no
    Train actor starts); the latest checkpoint lasts in storage and the numbers are the
    in-process runner's."""
    import ray
    from ray.util.state import list_actors

    job = ray.get_runtime_context().get_job_id()
    result = train_and_report(
        _run(toy_root, "ray.num_workers=0"),
        tmp_path / "ray",
        ray_runner(str(tmp_path / "storage")),
        "ray",
    )
    here = train_and_report(_run(toy_root), tmp_path / "here", train_in_process(), "in-process")
    latest = tmp_path / "storage" / f"{SIG}-Q1" / "checkpoint_latest"
    assert result.checkpoints == str(latest) and load_checkpoint(latest).epoch == 5
    assert result.best_epoch == here.best_epoch and result.epochs_run == here.epochs_run == 5
    assert result.selection["rmse"] == pytest.approx(here.selection["rmse"], rel=1e-5)
    assert result.test["rmse"] == pytest.approx(here.test["rmse"], rel=1e-5)
    assert not [
        a
        for a in list_actors(address=ray_session.dashboard, limit=1000)
        if a.job_id == job and "Train" in a.class_name and a.state == "ALIVE"
    ]
