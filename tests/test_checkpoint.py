"""Checkpoints (no Ray): round trip, one signature out of a packed run, refusals."""

import numpy as np
import pytest
import torch

from mmse_model.core.config import Config
from mmse_model.core.errors import CheckpointError
from mmse_model.evaluation.scoring import held_out_rows
from mmse_model.training.checkpoint import (
    FORMAT,
    FORMAT_VERSION,
    FoldEnsemble,
    load_checkpoint,
    save_checkpoint,
)
from mmse_model.training.held_out import evaluate_on_test
from mmse_model.training.loop import RunSpec, train_run
from tests.conftest import SIG, WEAK_SIG
from tests.test_trainer import Recorder


@pytest.fixture(scope="module")
def outcome(data_root):
    """Two signatures packed in one run, with batch-norm (running statistics to carry)."""
    config = Config().with_overrides(
        ["split.folds=3", "training.epochs=6", "arch.use_batch_norm=true"]
    )
    return train_run(RunSpec(str(data_root), (SIG, WEAK_SIG), "Q1", config), Recorder())


def test_round_trip_keeps_everything_needed_to_resume_and_predict(outcome, tmp_path):
    save_checkpoint(tmp_path / "ck", outcome.checkpoint)
    loaded = load_checkpoint(tmp_path / "ck")
    assert loaded.format == FORMAT and loaded.format_version == FORMAT_VERSION
    assert loaded.signatures == [SIG, WEAK_SIG] and loaded.folds == 3 and loaded.task == "Q1"
    for name, tensor in outcome.checkpoint.best_model_state.items():
        assert torch.equal(loaded.best_model_state[name], tensor)
        assert tensor.shape[0] == 6  # 2 signatures x 3 folds
    assert loaded.training_config() == outcome.checkpoint.training_config()
    assert loaded.states == outcome.checkpoint.states and loaded.states[0].best_epoch >= 1
    assert loaded.optimizer["steps"] > 0 and loaded.schedule and loaded.tracker["best_epoch"]
    assert not list(tmp_path.glob("ck/.*")), "no temporary file is left behind"


@pytest.mark.parametrize("signature", [SIG, WEAK_SIG])
def test_ensemble_of_one_signature_predicts_in_points(outcome, signature):
    data, split = outcome.group.task_data(signature), outcome.split
    ensemble = FoldEnsemble.from_checkpoint(outcome.checkpoint, signature)
    rows = held_out_rows(data.subject_ids, split)
    pred_folds = ensemble.predict_folds(data.X[rows])
    assert pred_folds.shape == (3, rows.sum())
    assert pred_folds.min() >= 0.0 and pred_folds.max() <= 5.0
    np.testing.assert_allclose(ensemble.predict(data.X[rows]), pred_folds.mean(axis=0))
    metrics = evaluate_on_test(outcome.checkpoint, data, split, signature)
    assert metrics["n"] == len(split.test_subjects)
    assert {"rmse", "mae", "r2", "pearson_r", "calibration_slope", "calibration_intercept"} <= set(
        metrics
    )
    with pytest.raises(CheckpointError, match="name one"):
        FoldEnsemble.from_checkpoint(outcome.checkpoint)
    with pytest.raises(CheckpointError, match="holds no signature 'm9_tau1_eps1_lmin2'"):
        FoldEnsemble.from_checkpoint(outcome.checkpoint, "m9_tau1_eps1_lmin2")


@pytest.mark.parametrize("signature", [SIG, WEAK_SIG])
def test_ensemble_reproduces_each_signatures_best_validation_metrics(outcome, signature):
    # Fold k's model, standardised with its own statistics, predicts fold k's validation rows
    # as it did at the signature's best epoch: weights and standardiser travel together.
    data, split = outcome.group.task_data(signature), outcome.split
    ensemble = FoldEnsemble.from_checkpoint(outcome.checkpoint, signature)
    rmse = []
    for k in range(3):
        rows = np.array([split.fold_of_subject.get(s) == k for s in data.subject_ids])
        pred = ensemble.predict_folds(data.X[rows])[k]
        rmse.append(float(np.sqrt(np.mean((pred - data.y[rows]) ** 2))))
    state = outcome.checkpoint.state(signature)
    assert np.mean(rmse) == pytest.approx(state.best_metrics["rmse"], rel=1e-5)


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
    save_checkpoint(future, outcome.checkpoint)
    payload = torch.load(future / "model.pt", weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, future / "model.pt")
    with pytest.raises(
        CheckpointError,
        match=r"mmse-checkpoint format version 3 is newer than this code reads \(up to 2\)",
    ):
        load_checkpoint(future)

    broken = tmp_path / "broken"
    save_checkpoint(broken, outcome.checkpoint)
    payload = torch.load(broken / "model.pt", weights_only=True)
    del payload["states"]
    payload["surprise"] = 1
    torch.save(payload, broken / "model.pt")
    with pytest.raises(
        CheckpointError, match=r"broken/model.pt: (states: missing|surprise: unknown key)"
    ):
        load_checkpoint(broken)

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
