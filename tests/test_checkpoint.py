import pickle

import numpy as np
import pytest
import torch

from mmse_model.checkpoint import FORMAT, FORMAT_VERSION, FoldEnsemble, load_checkpoint, save_checkpoint
from mmse_model.config import Config
from mmse_model.errors import CheckpointError
from mmse_model.evaluate import evaluate_on_test, held_out_rows
from mmse_model.trainer import RunSpec, train_task

from tests.conftest import SIG


class _Null:
    def report(self, metrics, checkpoint_dir):
        pass


@pytest.fixture(scope="module")
def outcome(data_root):
    config = Config().with_overrides(["training.folds=3", "training.epochs=5", "arch.use_batch_norm=true"])
    return train_task(RunSpec(str(data_root), SIG, "Q1", config), _Null())


def test_round_trip_keeps_everything_needed_to_resume_and_predict(outcome, tmp_path):
    save_checkpoint(tmp_path / "ck", outcome.checkpoint)
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded["format"] == FORMAT and loaded["format_version"] == FORMAT_VERSION
    for key in ("model_state", "optimizer_state", "scheduler_state", "epoch", "callbacks", "config",
                "standardiser", "feature_names", "task", "signature", "score_range", "metrics", "split"):
        assert key in loaded, key
    for name, tensor in outcome.checkpoint["model_state"].items():
        assert torch.equal(loaded["model_state"][name], tensor)
    assert Config.from_dict(loaded["config"]) == Config.from_dict(outcome.checkpoint["config"])
    assert loaded["callbacks"]["EarlyStopping"]["best_epoch"] >= 1
    assert not list(tmp_path.glob("ck/.*")), "no temporary file is left behind"


def test_ensemble_predicts_in_points_within_the_task_range(outcome):
    ensemble = FoldEnsemble.from_checkpoint(outcome.checkpoint)
    rows = held_out_rows(outcome.data, outcome.split)
    pred_folds = ensemble.predict_folds(outcome.data.X[rows])
    assert pred_folds.shape == (3, rows.sum())
    assert pred_folds.min() >= 0.0 and pred_folds.max() <= 5.0
    np.testing.assert_allclose(ensemble.predict(outcome.data.X[rows]), pred_folds.mean(axis=0))
    metrics = evaluate_on_test(outcome.checkpoint, outcome.data, outcome.split)
    assert metrics["n"] == len(outcome.split.test_subjects)
    assert {"rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept"} <= set(metrics)


def test_ensemble_reproduces_the_validation_predictions_of_training(outcome):
    # Fold k's model, standardised with fold k's statistics, predicts fold k's validation rows
    # exactly as during training: the standardiser travels with the weights.
    ensemble = FoldEnsemble.from_checkpoint(outcome.checkpoint)
    data, split = outcome.data, outcome.split
    mean = outcome.final_metrics["per_fold"]
    for k in range(3):
        rows = np.isin(data.subject_ids, split.fold_subjects(k))
        pred = ensemble.predict_folds(data.X[rows])[k]
        rmse = float(np.sqrt(np.mean((pred - data.y[rows]) ** 2)))
        assert rmse == pytest.approx(mean[k]["rmse"], rel=1e-5)


def test_corrupt_foreign_and_future_checkpoints_are_clear_errors(tmp_path, outcome):
    garbage = tmp_path / "garbage" / "model.pt"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(garbage.parent)

    foreign = tmp_path / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(CheckpointError, match="not an mmse checkpoint"):
        load_checkpoint(foreign)

    future = tmp_path / "future"
    save_checkpoint(future, {**outcome.checkpoint})
    payload = torch.load(future / "model.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, future / "model.pt")
    with pytest.raises(CheckpointError, match="format version 2, this code reads 1"):
        load_checkpoint(future)

    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "absent")


class Payload:
    def __reduce__(self):
        return (print, ("code ran while loading",))


def test_a_checkpoint_that_would_run_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "x": Payload()}, path)
    with pytest.raises(CheckpointError, match="not a readable checkpoint"):
        load_checkpoint(path)
    assert "code ran" not in capsys.readouterr().out
